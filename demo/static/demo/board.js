/*
 * The demo page's live auction board (``/realtime/demo/``), on the bundled client
 * (``realtime/client.js``): events move the table (price, leader, bids, time left) and
 * appear as sentences; a signed-in visitor bids from the table through the bid API.
 *
 * The sentences come from ``demo/sentences.js`` (``describe(event)``): the known auction
 * events have their own wording per auction type, any other type a generic one.
 */
(function (root) {
  "use strict";

  var sentences = root.NotifyDemoSentences; // demo/sentences.js, loaded first
  var money = sentences.money;
  var describe = sentences.describe;

  function timeLeft(endsAt, now) {
    var ms = Date.parse(endsAt) - now;
    if (!(ms > 0)) return "ended";
    var s = Math.floor(ms / 1000);
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    if (h) return h + " h " + m + " min";
    if (m) return m + " min " + sec + " s";
    return sec + " s";
  }

  function rowOf(auctionId) {
    if (!auctionId) return null;
    return document.querySelector('#auctions tr[data-auction-id="' + auctionId + '"]');
  }

  function setCell(row, name, text) {
    var cell = row.querySelector("." + name);
    if (cell && text !== null && text !== undefined) {
      cell.textContent = text;
      cell.classList.remove("changed");
      void cell.offsetWidth; // restart the highlight
      cell.classList.add("changed");
    }
  }

  function applyToBoard(event) {
    var d = event.data || {};
    var row = rowOf(d.auction_id);
    if (!row) return;
    if (event.event_type === "outbid") return; // private: the price comes with the bid's events
    // a price clock's tick and a bid carry the price; the result carries the final price
    var price = d.current_price !== undefined ? d.current_price : d.price;
    if (d.new_status === "completed") price = d.final_price;
    if (price !== undefined && price !== null) setCell(row, "price", money(price, d.currency || row.dataset.currency));
    var lottery = d.auction_type === "chinese"; // entries, not a leader, until the draw
    if (d.new_status === "completed") setCell(row, "leader", d.winner || "no winner");
    else if (d.leader && !lottery) setCell(row, "leader", d.leader);
    else if (event.event_type === "bid_placed" && !d.sealed && d.bidder && !lottery) setCell(row, "leader", d.bidder);
    if (d.bid_count !== undefined) setCell(row, "bids", String(d.bid_count));
    if (d.ends_at) row.dataset.endsAt = d.ends_at;
    if (d.new_status) {
      setCell(row, "status", d.new_status);
      row.dataset.status = d.new_status;
      if (d.new_status === "completed" || d.new_status === "cancelled") {
        // no more bids; the form stays for its answer ("Your bid of … is in"), which
        // may arrive after the event that the bid ended the auction
        var form = row.querySelector("form.bid-form");
        if (form) {
          form.classList.add("closed");
          var controls = form.querySelectorAll("input, button");
          for (var i = 0; i < controls.length; i++) controls[i].disabled = true;
        }
      }
      tickClocks(); // "ended" now, not at the next second
    }
  }

  function tickClocks() {
    var now = Date.now();
    var rows = document.querySelectorAll("#auctions tr[data-auction-id]");
    for (var i = 0; i < rows.length; i++) {
      var row = rows[i];
      var cell = row.querySelector(".time-left");
      if (!cell) continue;
      var status = row.dataset.status;
      cell.textContent = status === "scheduled" ? "starts in " + timeLeft(row.dataset.startsAt, now)
        : status === "completed" ? "ended"
          : status === "cancelled" ? "cancelled"
            : timeLeft(row.dataset.endsAt, now);
    }
  }

  function bidForms(csrfToken) {
    var forms = document.querySelectorAll("form.bid-form");
    for (var i = 0; i < forms.length; i++) {
      forms[i].addEventListener("submit", function (e) {
        e.preventDefault();
        var form = e.target;
        var result = form.querySelector(".bid-result");
        var amount = form.querySelector("input[name=amount]").value;
        result.textContent = "sending…";
        result.className = "bid-result";
        fetch("/api/v1/auctions/" + form.dataset.auctionId + "/bids/", {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken },
          body: JSON.stringify({ amount: amount }),
        })
          .then(function (response) {
            return response.json().then(function (body) { return { ok: response.ok, body: body }; });
          })
          .then(function (answer) {
            if (answer.ok) {
              result.textContent = "Your bid of " + answer.body.amount + " is in.";
              result.className = "bid-result ok";
            } else {
              var err = answer.body.error || {};
              result.textContent = err.message || "The bid was refused.";
              result.className = "bid-result refused";
            }
          })
          .catch(function () {
            result.textContent = "Could not reach the server; try again.";
            result.className = "bid-result refused";
          });
      });
    }
  }

  // an inbox notification: its rich content's image and buttons (links open the tracked
  // URL, which records the click); only http(s) URLs become links
  function safeUrl(url) { return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null; }
  function inboxCard(n) {
    var card = document.createElement("div"); card.className = "inbox-card";
    card.dataset.notificationId = n.id;
    var title = document.createElement("strong"); title.className = "inbox-title"; title.textContent = n.title || "";
    var body = document.createElement("p"); body.className = "inbox-message"; body.textContent = n.message || "";
    card.appendChild(title); card.appendChild(body);
    var rich = n.rich_content || {};
    var image = rich.image && safeUrl(rich.image.url);
    if (image) {
      var img = document.createElement("img"); img.className = "inbox-image";
      img.src = image; img.alt = rich.image.alt || ""; img.style.maxWidth = "20rem";
      card.appendChild(img);
    }
    if (rich.text) {
      var text = document.createElement("p"); text.className = "inbox-text"; text.textContent = rich.text;
      card.appendChild(text);
    }
    var buttons = (rich.buttons || []).slice();
    var action = safeUrl(n.tracked_action_url) || safeUrl(n.action_url);
    if (action) { buttons.unshift({label: n.action_label || "Open", tracked_url: action}); }
    buttons.forEach(function (b) {
      var href = safeUrl(b.tracked_url) || safeUrl(b.url);
      if (!href) { return; }
      var a = document.createElement("a"); a.className = "inbox-button"; a.href = href;
      a.textContent = b.label || "Open"; a.rel = "noopener noreferrer";
      card.appendChild(a);
    });
    return card;
  }

  function addEvent(list, event, rt, titles) {
    var li = document.createElement("li");
    li.className = "event";
    li.dataset.seq = event.seq;
    li.dataset.eventType = event.event_type;
    var time = document.createElement("time");
    time.textContent = new Date(event.generated_at || Date.now()).toLocaleTimeString();
    var text = document.createElement("span");
    text.className = "sentence";
    text.textContent = describe(event, titles);
    li.appendChild(time);
    li.appendChild(text);
    if (event.event_type === "notification.created" && event.data) {
      li.appendChild(inboxCard(event.data));
    }
    li.title = event.event_type + " #" + event.seq;
    list.insertBefore(li, list.firstChild);
    document.getElementById("position").textContent = rt.lastSeq;
  }

  function throttleControl(rt) {
    document.getElementById("throttle-form").addEventListener("submit", function (e) {
      e.preventDefault();
      document.getElementById("preferences-error").textContent = "";
      rt.setThrottle(document.getElementById("throttle").value || null);
    });
    setInterval(function () {
      document.getElementById("batches").textContent = rt.batches;
      document.getElementById("collapsed").textContent = rt.collapsed;
    }, 500);
  }

  function showPreferences(prefs) {
    var shown = {};
    for (var name in prefs) {
      var value = prefs[name];
      if (value !== null && !(Array.isArray(value) && !value.length)) shown[name] = value;
    }
    document.getElementById("preferences").textContent = JSON.stringify(shown);
    document.getElementById("throttle").value = prefs.rate || "";
  }

  function start() {
    var config = JSON.parse(document.getElementById("demo-config").textContent);
    var list = document.getElementById("events");
    var statusEl = document.getElementById("status");
    var count = 0;
    var rt = new root.NotifyRealtime({
      topics: config.topics,
      autoAck: true,
      onStatus: function (status) { statusEl.textContent = status; statusEl.className = status; },
      onEvent: function (event) {
        count += 1;
        document.getElementById("count").textContent = count;
        applyToBoard(event);
        addEvent(list, event, rt, config.titles);
      },
      onRecoveryFailed: function () { root.location.reload(); },
      onPreferences: showPreferences,
      onError: function (frame) {
        if (frame.code === "INVALID_PREFERENCES") {
          document.getElementById("preferences-error").textContent = frame.message;
        }
      },
    });
    root.notifyRealtime = rt;
    throttleControl(rt);
    if (config.signedIn) bidForms(config.csrfToken);
    tickClocks();
    setInterval(tickClocks, 1000);
    rt.connect();
  }

  root.NotifyDemo = { describe: describe, timeLeft: timeLeft };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})(window);
