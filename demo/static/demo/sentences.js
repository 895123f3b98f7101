/*
 * The demo page's event sentences: ``NotifyDemoSentences.describe(event, titles)`` turns
 * any real-time event into a sentence a person reads. The auctions services' events
 * (``bid_placed``, ``outbid``, ``auction_price_changed``, ``auction_status_changed``,
 * ``auction_ending``, ``auction_entered``, ``auction_dropped_out``) are worded per
 * auction type where the type changes the meaning (a Dutch bid takes the item at the
 * clock price, a reverse auction's seller offers, a Chinese auction sells entries); any
 * other type gets a generic sentence from its type and fields, so a new event type is
 * readable the day it is published. ``titles`` maps auction ids to titles, for events
 * that carry only the id.
 */
(function (root) {
  "use strict";

  function money(value, currency) {
    if (value === null || value === undefined || value === "") return null;
    return String(value) + (currency ? " " + currency : "");
  }

  function humanize(name) {
    var words = String(name || "event").replace(/[._]+/g, " ").trim();
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  function titleOf(data, titles) {
    return data.item_title || data.auction_title || (titles && titles[data.auction_id]) ||
      "an auction";
  }

  function plural(n, word) {
    return n + " " + word + (Number(n) === 1 ? "" : "s");
  }

  function fallbackSentence(type, data, title) {
    var details = [];
    for (var key in data) {
      if (/^(auction_id|auction_title|auction_type|item_title|currency)$/.test(key)) continue;
      var value = data[key];
      if (value === null || typeof value === "object") continue;
      details.push(key.replace(/_/g, " ") + " " + value);
      if (details.length >= 3) break;
    }
    return humanize(type) + " on " + title + (details.length ? " (" + details.join(", ") + ")" : "") + ".";
  }

  function bidPlaced(d, title, who) {
    var amount = money(d.bid_amount || d.amount, d.currency) || "";
    var later = d.extended_by_seconds ? "; the end moves " + d.extended_by_seconds + " s later" : "";
    if (d.sealed) return who + " placed a sealed bid on " + title + ".";
    switch (d.auction_type) {
      case "dutch":
        return who + " took " + title + " at the clock price, " + amount + ".";
      case "reverse":
        return who + " offered to supply " + title + " for " + amount + ".";
      case "chinese":
        return who + " bought entries worth " + amount + " in " + title +
          (d.current_price ? "; the takings are " + money(d.current_price, d.currency) : "") + ".";
      case "penny":
        return who + " bid on " + title + ": the price is now " + amount + later + ".";
      default:
        return who + " bid " + amount + " on " + title + later + ".";
    }
  }

  function priceChanged(d, title) {
    var price = money(d.current_price !== undefined ? d.current_price : d.price, d.currency);
    var was = d.previous_price ? " (was " + money(d.previous_price, d.currency) + ")" : "";
    if (d.reason === "clock" && d.auction_type === "dutch") {
      return "The Dutch clock on " + title + " falls to " + price + was + ".";
    }
    if (d.reason === "clock" && d.auction_type === "japanese") {
      return "The clock on " + title + " rises to " + price + was + ".";
    }
    return "The price of " + title + " is now " + (price || "unknown") + was + ".";
  }

  function started(d, title) {
    var extra = "";
    if (d.price && d.tick_seconds) {
      extra = d.auction_type === "japanese"
        ? ": the clock starts at " + money(d.price, d.currency) + " and rises every " + d.tick_seconds + " s"
        : ": the clock starts at " + money(d.price, d.currency) + " and falls every " + d.tick_seconds + " s";
    } else if (d.window_seconds) {
      extra = ": it ends at a random moment in its last " + d.window_seconds + " s";
    }
    if (d.commitment) extra += " (the random value is committed: sha256 " + String(d.commitment).slice(0, 12) + "…)";
    return title + " has started" + extra + ".";
  }

  function ended(d, title) {
    if (!d.winner) {
      var why = d.reserve_met === false && d.bid_count ? " (reserve not met)" : "";
      return title + " has ended without a winner" + why + ".";
    }
    var sentence = title + " has ended: " + d.winner + " won at " + money(d.final_price, d.currency);
    // who else pays under the type's rules (all-pay, top-up, penny fees, lottery entries)
    var payers = d.payments ? Object.keys(d.payments) : [];
    if (payers.length) {
      var owed = payers.slice(0, 3).map(function (name) {
        return name + " pays " + money(d.payments[name], d.currency);
      });
      if (payers.length > 3) owed.push(plural(payers.length - 3, "other bidder") + " pay too");
      sentence += "; under the rules " + owed.join(", ");
    }
    if (d.proof) sentence += "; the draw can be checked against the commitment";
    return sentence + ".";
  }

  function statusChanged(d, title) {
    switch (d.new_status) {
      case "active":
        return started(d, title);
      case "completed":
        return ended(d, title);
      case "cancelled":
        return title + " was cancelled" + (d.reason ? " (" + d.reason + ")" : "") + ".";
      case "scheduled":
        return title + " is scheduled" +
          (d.starts_at ? " to start at " + new Date(d.starts_at).toLocaleString() : "") + ".";
      default:
        return title + " is now " + d.new_status + ".";
    }
  }

  function outbid(d, title) {
    var yours = money(d.your_amount, d.currency);
    var now = money(d.current_price, d.currency);
    var head = d.kind === "proxy_bid_exceeded" ? "Your maximum bid on " + title + " was exceeded"
      : d.kind === "underbid" ? "You were underbid on " + title
        : "You were outbid on " + title;
    return head + (yours ? " (your bid " + yours + ")" : "") + (now ? "; the price is now " + now : "") + ".";
  }

  function describe(event, titles) {
    var d = event.data || {};
    var title = titleOf(d, titles);
    var who = d.bidder || "A bidder";
    switch (event.event_type) {
      case "bid_placed":
        return bidPlaced(d, title, who);
      case "outbid":
        return outbid(d, title);
      case "auction_price_changed":
        return priceChanged(d, title);
      case "auction_status_changed":
        return statusChanged(d, title);
      case "auction_ending":
        return title + " ends in " + (d.time_remaining || "a few minutes") + ".";
      case "auction_entered":
        return who + " entered " + title + (d.entrants ? " (" + plural(d.entrants, "entrant") + ")" : "") + ".";
      case "auction_dropped_out":
        return who + " dropped out of " + title + " at " + money(d.price, d.currency) +
          (d.still_in !== undefined ? "; " + d.still_in + " still in" : "") + ".";
      case "notification.created":
        return "For you: " + (d.title || "a notification") + (d.message ? " — " + d.message : "");
      default:
        return fallbackSentence(event.event_type, d, title);
    }
  }

  root.NotifyDemoSentences = { describe: describe, money: money };
})(window);
