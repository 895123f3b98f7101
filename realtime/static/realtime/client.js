/*
 * notifyplatform real-time client — dependency-free, for browsers.
 *
 *   const rt = new NotifyRealtime({
 *     topics: ["auction.<uuid>", "system"],
 *     token: "np_...",               // optional: API token; otherwise the session cookie
 *     onEvent(event) { ... },        // every event frame, once, in sequence order
 *     onStatus(status, detail) {},   // "connecting" | "open" | "closed" | "reconnecting"
 *     onRecoveryFailed(frame) {},    // the gap is beyond retention: reload your state
 *     onError(frame) {},             // error frames {code, message}
 *     autoAck: false,                // ack ack_required events after onEvent returns
 *     batch: true,                   // accept coalesced frames (?batch=1): the server may
 *                                    // send a JSON array of event frames in one message
 *     preferences: {rate: 5, min_priority: "high", latest: ["auction_price_changed"]},
 *     onPreferences(prefs) {},       // the preferences in force (connected / changed)
 *   });
 *   rt.connect();
 *   rt.subscribe(["auction.<other>"]); rt.unsubscribe(["system"]); rt.ack(eventId);
 *   rt.setPreferences({event_types: ["bid_placed"]}); rt.setThrottle(2); rt.setThrottle(null);
 *   rt.close();
 *
 * Preferences (see the README's protocol section): rate (events per second; the excess
 * arrives coalesced, and events of the "latest" types collapse to the newest, which lists
 * the sequence numbers it replaces in "collapsed"), event_types, categories,
 * min_priority, latest, coalesce. They ride on the connect URL, so a reconnect keeps them.
 *
 * Resumption: the server sends each connection's events in strictly increasing sequence
 * order with no gaps (it fills them itself), so the last sequence number received is the
 * last contiguous one. The client remembers it and, after any disconnect, reconnects with
 * exponential backoff and jitter, asking the server to replay everything after it
 * (?topics=...&since=N&reconnect=K). Should an event ever arrive below that position
 * (out of order), the position drops back below it, so a resume never passes an event
 * that was missing. Events are de-duplicated by sequence number, so a replay overlapping
 * live delivery is harmless.
 */
(function (root) {
  "use strict";

  var DEFAULTS = {
    path: "/ws/v1/events/",
    url: null,
    token: null,
    topics: [],
    since: null,
    autoAck: false,
    batch: true,
    minBackoff: 500,
    maxBackoff: 15000,
    onEvent: null,
    onStatus: null,
    onRecoveryFailed: null,
    onError: null,
    onFrame: null,
    preferences: null,
    onPreferences: null,
  };

  function NotifyRealtime(options) {
    this.options = {};
    for (var key in DEFAULTS) this.options[key] = DEFAULTS[key];
    for (key in options || {}) this.options[key] = options[key];
    this.topics = this.options.topics.slice();
    this.lastSeq = this.options.since;
    this.reconnects = 0;
    this.attempt = 0;
    this.ws = null;
    this.closedByUser = false;
    this.seen = {};
    this.seenOrder = [];
    this.connectionId = null;
    this.timer = null;
    this.batches = 0; // coalesced messages received (arrays of event frames)
    this._initPreferences();
  }

  NotifyRealtime.prototype._url = function () {
    var base = this.options.url;
    if (!base) {
      var loc = root.location;
      base = (loc.protocol === "https:" ? "wss://" : "ws://") + loc.host + this.options.path;
    }
    var params = [];
    if (this.topics.length) params.push("topics=" + encodeURIComponent(this.topics.join(",")));
    if (this.lastSeq !== null && this.lastSeq !== undefined) params.push("since=" + this.lastSeq);
    if (this.reconnects) params.push("reconnect=" + this.reconnects);
    if (this.options.batch) params.push("batch=1");
    params = params.concat(this._preferenceParams());
    if (this.options.token) params.push("token=" + encodeURIComponent(this.options.token));
    return base + (base.indexOf("?") >= 0 ? "&" : "?") + params.join("&");
  };

  NotifyRealtime.prototype._status = function (status, detail) {
    this.status = status;
    if (this.options.onStatus) this.options.onStatus(status, detail || {});
  };

  NotifyRealtime.prototype.connect = function () {
    var self = this;
    this.closedByUser = false;
    this._status(this.reconnects ? "reconnecting" : "connecting", { attempt: this.attempt });
    var ws = new WebSocket(this._url());
    this.ws = ws;
    ws.onopen = function () {
      self.attempt = 0;
      self._status("open", {});
    };
    ws.onmessage = function (message) {
      var frame;
      try {
        frame = JSON.parse(message.data);
      } catch (e) {
        return;
      }
      if (Array.isArray(frame)) {
        // a coalesced message: event frames in sequence order, handled one by one
        self.batches += 1;
        for (var i = 0; i < frame.length; i++) self._handle(frame[i]);
        return;
      }
      self._handle(frame);
    };
    ws.onclose = function (close) {
      if (self.ws !== ws) return;
      self.ws = null;
      self._status("closed", { code: close.code, reason: close.reason });
      if (self.closedByUser || close.code === 4401) return; // 4401: bad token, don't retry
      self._scheduleReconnect();
    };
    ws.onerror = function () {
      /* onclose follows */
    };
    return this;
  };

  NotifyRealtime.prototype._scheduleReconnect = function () {
    var self = this;
    var delay = Math.min(this.options.maxBackoff, this.options.minBackoff * Math.pow(2, this.attempt));
    delay = delay / 2 + Math.random() * delay / 2; // jitter: herds of clients spread out
    this.attempt += 1;
    this.reconnects += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(function () {
      self.connect();
    }, delay);
  };

  NotifyRealtime.prototype._remember = function (seq) {
    if (this.seen[seq]) return false;
    this.seen[seq] = true;
    this.seenOrder.push(seq);
    if (this.seenOrder.length > 5000) delete this.seen[this.seenOrder.shift()];
    return true;
  };

  NotifyRealtime.prototype._handle = function (frame) {
    if (this.options.onFrame) this.options.onFrame(frame);
    switch (frame.type) {
      case "connected":
        this.connectionId = frame.connection_id;
        // a first connection starts from the server's position, so an outage before
        // the first event still resumes without a gap
        if (this.lastSeq === null || this.lastSeq === undefined) this.lastSeq = frame.position;
        break;
      case "ping":
        this._send({ type: "pong" });
        break;
      case "event":
        var isNew = this._remember(frame.seq);
        if (this.lastSeq === null || frame.seq > this.lastSeq) this.lastSeq = frame.seq;
        // an unseen event below the position: something before it was late, so resume
        // from just before it (what follows again is de-duplicated)
        // (ack_required events are re-sent out of order by design: not a gap)
        else if (isNew && !frame.ack_required && frame.seq < this.lastSeq) this.lastSeq = frame.seq - 1;
        if (!isNew && !frame.ack_required) break;
        if (frame.collapsed) this.collapsed += frame.collapsed.length;
        if (isNew && this.options.onEvent) this.options.onEvent(frame);
        if (frame.ack_required && this.options.autoAck) this.ack(frame.id);
        break;
      case "recovery_failed":
        this.lastSeq = frame.position;
        if (this.options.onRecoveryFailed) this.options.onRecoveryFailed(frame);
        break;
      case "error":
        if (this.options.onError) this.options.onError(frame);
        break;
      case "preferences":
        this._preferencesInForce(frame.preferences);
        break;
    }
    if (frame.type === "connected" && frame.preferences) this._preferencesInForce(frame.preferences);
  };

  NotifyRealtime.prototype._send = function (frame) {
    if (this.ws && this.ws.readyState === 1) {
      this.ws.send(JSON.stringify(frame));
      return true;
    }
    return false;
  };

  NotifyRealtime.prototype.subscribe = function (topics) {
    var added = [];
    for (var i = 0; i < topics.length; i++) {
      if (this.topics.indexOf(topics[i]) < 0) {
        this.topics.push(topics[i]);
        added.push(topics[i]);
      }
    }
    if (added.length) this._send({ type: "subscribe", topics: added });
    return this;
  };

  NotifyRealtime.prototype.unsubscribe = function (topics) {
    this.topics = this.topics.filter(function (t) {
      return topics.indexOf(t) < 0;
    });
    this._send({ type: "unsubscribe", topics: topics });
    return this;
  };

  NotifyRealtime.prototype.ack = function (eventId) {
    return this._send({ type: "ack", event_id: eventId });
  };

  NotifyRealtime.prototype.close = function () {
    this.closedByUser = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000);
  };

  // --- per-connection preferences (rate limit, filters, coalescing) -------------------

  var PREFERENCE_FIELDS = ["rate", "event_types", "categories", "min_priority", "latest", "coalesce"];

  NotifyRealtime.prototype._initPreferences = function () {
    this.preferences = {}; // what the client asks for (sent on every connect)
    this.preferencesInForce = null; // what the server says is in force
    this.collapsed = 0; // events replaced by a newer one of a "latest" type
    var given = this.options.preferences || {};
    for (var i = 0; i < PREFERENCE_FIELDS.length; i++) {
      var name = PREFERENCE_FIELDS[i];
      if (given[name] !== undefined && given[name] !== null) this.preferences[name] = given[name];
    }
  };

  NotifyRealtime.prototype._preferenceParams = function () {
    var params = [];
    for (var name in this.preferences) {
      var value = this.preferences[name];
      if (value === null || value === undefined) continue;
      if (Array.isArray(value)) value = value.join(",");
      if (value === true) value = "1";
      if (value === false) value = "0";
      params.push(name + "=" + encodeURIComponent(value));
    }
    return params;
  };

  NotifyRealtime.prototype._preferencesInForce = function (prefs) {
    this.preferencesInForce = prefs;
    if (this.options.onPreferences) this.options.onPreferences(prefs);
  };

  // Change some preferences (null resets one); sent at once when connected, and kept
  // for every later connect. The answer is a "preferences" frame (onPreferences) or an
  // INVALID_PREFERENCES error (onError), which changes nothing.
  NotifyRealtime.prototype.setPreferences = function (changes) {
    var frame = { type: "preferences" };
    for (var name in changes) {
      if (PREFERENCE_FIELDS.indexOf(name) < 0) continue;
      frame[name] = changes[name];
      if (changes[name] === null || changes[name] === undefined) delete this.preferences[name];
      else this.preferences[name] = changes[name];
    }
    this._send(frame);
    return this;
  };

  // At most `rate` deliveries a second (a number; null or 0 for no limit).
  NotifyRealtime.prototype.setThrottle = function (rate) {
    return this.setPreferences({ rate: rate ? Number(rate) : null });
  };

  root.NotifyRealtime = NotifyRealtime;
})(typeof window !== "undefined" ? window : this);
