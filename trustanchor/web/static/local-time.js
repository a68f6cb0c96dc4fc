// Times in the viewer's own time zone: every <time datetime="…Z" data-local> of the page, whose
// text the server wrote in UTC ("2026-12-06 17:34:45 UTC"), is rewritten in the browser's zone
// in the same shape ("2026-12-07 02:34:45 GMT+9", the zone as Intl.DateTimeFormat names it in
// the page's language); the UTC text moves to the title. Without script the UTC text stays.
(function () {
  "use strict";
  if (typeof Intl === "undefined" || !Intl.DateTimeFormat) { return; }
  var format;
  try {
    format = new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
      year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
      hourCycle: "h23", timeZoneName: "short"
    });
    if (!format.formatToParts) { return; }
  } catch (e) { return; }
  function text(when) {
    var part = {};
    format.formatToParts(when).forEach(function (p) { part[p.type] = p.value; });
    return part.year + "-" + part.month + "-" + part.day + " " +
      part.hour + ":" + part.minute + ":" + part.second + " " + part.timeZoneName;
  }
  var times = document.querySelectorAll("time[datetime][data-local]");
  for (var i = 0; i < times.length; i += 1) {
    var el = times[i];
    var when = new Date(el.getAttribute("datetime"));
    if (isNaN(when.getTime())) { continue; }
    el.setAttribute("title", el.textContent);
    el.textContent = text(when);
  }
})();
