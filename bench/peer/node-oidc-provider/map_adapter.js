// A Map-backed oidc-provider adapter for bench/token_endpoint.py --grant transfer_code.
//
// The library's own memory adapter is an LRU of 1000 entries: codes minted before a run would be
// evicted before wrk uses them. This one keeps everything (with expiry) in one Map per model, and
// keeps consumed entries (marked `consumed`) so that reuse is detected, as a real store would.

const stores = new Map();

function store(model) {
  if (!stores.has(model)) stores.set(model, new Map());
  return stores.get(model);
}

const now = () => Math.floor(Date.now() / 1000);

export class MapAdapter {
  constructor(model) {
    this.items = store(model);
  }

  async upsert(id, payload, expiresIn) {
    this.items.set(id, { payload, expiresAt: expiresIn ? now() + expiresIn : undefined });
  }

  async find(id) {
    const item = this.items.get(id);
    if (!item) return undefined;
    if (item.expiresAt !== undefined && item.expiresAt <= now()) {
      this.items.delete(id);
      return undefined;
    }
    return item.payload;
  }

  async findByUid(uid) {
    for (const [, item] of this.items) if (item.payload.uid === uid) return item.payload;
    return undefined;
  }

  async findByUserCode(userCode) {
    for (const [, item] of this.items) if (item.payload.userCode === userCode) return item.payload;
    return undefined;
  }

  async consume(id) {
    const item = this.items.get(id);
    if (item) item.payload.consumed = now();
  }

  async destroy(id) {
    this.items.delete(id);
  }

  async revokeByGrantId(grantId) {
    for (const [id, item] of this.items) if (item.payload.grantId === grantId) this.items.delete(id);
  }
}
