// Times in the viewer's own time zone: every <time datetime="…Z" data-local> of the page, whose
// text the server wrote in UTC, is rewritten with Intl.DateTimeFormat in the browser's zone and
// the page's language; the UTC text stays in the title. Without script the UTC text stays.
(function () {
  "use strict";
  if (typeof Intl === "undefined" || !Intl.DateTimeFormat) { return; }
  var lang = document.documentElement.lang || undefined;
  var format;
  try {
    format = new Intl.DateTimeFormat(lang, {
      year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
      hour12: false, timeZoneName: "short"
    });
  } catch (e) { return; }
  var times = document.querySelectorAll("time[datetime][data-local]");
  for (var i = 0; i < times.length; i += 1) {
    var el = times[i];
    var when = new Date(el.getAttribute("datetime"));
    if (isNaN(when.getTime())) { continue; }
    el.setAttribute("title", el.textContent);
    el.textContent = format.format(when);
  }
})();
