// The station's kiosk display: draws the agent's views as they arrive over /events.
// No framework and no network but the agent: served with Content-Security-Policy 'self'.
// Data from the views goes into the page as text only (textContent), never as markup.
"use strict";

(() => {
  const LOST_AFTER_MS = 20000;      // no event (views or the agent's pings) for this long
  const REOPEN_MS = 3000;           // after the agent refused or closed the stream for good
  const only = (() => {
    const match = location.pathname.match(/^\/evse\/(\d+)$/);
    return match ? Number(match[1]) : null;
  })();
  const page = { config: null, lang: "en", views: new Map(), cards: new Map(), last: 0 };
  const $ = (id) => document.getElementById(id);

  function label(key) {
    const labels = page.config ? page.config.labels : {};
    const own = labels[page.lang] || {};
    return own[key] || (labels.en || {})[key] || key;
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // FNV-1a: a short version tag, so that a QR image is fetched again only when its text changes.
  function hash(text) {
    let h = 0x811c9dc5;
    for (let i = 0; i < text.length; i++) {
      h ^= text.charCodeAt(i);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    return h.toString(16);
  }

  function displayKey(evse) { return evse === null ? "station" : String(evse); }

  function qr(card, evse, kind, text, caption) {
    const box = el("figure", "qr qr-" + kind);
    const src = "/qr/" + displayKey(evse) + "/" + kind + ".svg?v=" + hash(text);
    box.dataset.src = src;
    let img = card.images.get(src);
    if (!img) {
      img = el("img");
      img.alt = caption;
      // A record too long for a QR code is said, never truncated (the agent answers 404).
      img.addEventListener("error", () => {
        img.dataset.failed = "1";
        if (img.parentNode) img.replaceWith(el("p", "qr-too-long", label("qr_too_long")));
      });
      img.src = src;
      card.images.set(src, img);
    }
    box.append(img.dataset.failed ? el("p", "qr-too-long", label("qr_too_long")) : img,
               el("figcaption", "caption", caption));
    return box;
  }

  function fact(key, value, cls) {
    const box = el("div", "fact " + (cls || key));
    box.append(el("span", "fact-label", label(key)), el("span", "fact-value", value));
    return box;
  }

  function lines(cls, items, title) {
    const box = el("div", "lines " + cls);
    if (title) box.append(el("div", "lines-title", title));
    for (const item of items) box.append(el("div", "line", item));
    return box;
  }

  function kwh(wh) {
    if (wh === null || wh === undefined) return null;
    const sign = wh < 0 ? "-" : "";
    const abs = Math.abs(wh);
    return sign + Math.floor(abs / 1000) + "." + String(abs % 1000).padStart(3, "0") + " kWh";
  }

  function kw(live) {
    const tenths = Math.floor((Math.abs(live.power_w) + 50) / 100);
    return (live.power_w < 0 && tenths ? "-" : "") + Math.floor(tenths / 10) + "." + (tenths % 10) + " kW";
  }

  function duration(seconds) {
    const h = Math.floor(seconds / 3600), m = Math.floor(seconds / 60) % 60, s = seconds % 60;
    return h + ":" + String(m).padStart(2, "0") + ":" + String(s).padStart(2, "0");
  }

  function card(evse) {
    const key = displayKey(evse);
    let found = page.cards.get(key);
    if (!found) {
      const root = el("section", "display");
      root.dataset.evse = key;
      found = { root, images: new Map() };
      page.cards.set(key, found);
      const waiting = $("displays").querySelector(".waiting");
      if (waiting) waiting.remove();
      $("displays").append(root);
      // EVSEs in id order, whatever order their first views came in.
      const sorted = [...$("displays").children].sort((a, b) => order(a.dataset.evse) - order(b.dataset.evse));
      $("displays").append(...sorted);
    }
    return found;
  }

  function order(key) { return key === "station" ? -1 : Number(key); }

  function draw(evse, view) {
    const c = card(evse);
    const root = c.root;
    const qrs = [];
    root.className = "display screen-" + view.screen + " link-" + view.link;
    const head = el("div", "head");
    const name = evse === null ? "" : label("connector") + " " + evse;
    head.append(el("span", "connector", view.evse_id ? (name ? name + " · " : "") + view.evse_id : name),
                el("span", "screen-title", label(view.screen)));
    const info = el("div", "info");
    const total = view.total;
    if (view.link === "down") {
      // Whatever the screen: EVerest does not answer, so nothing here is current.
      const box = el("div", "offline");
      box.append(el("div", "headline", label("offline")), el("div", "detail", label("offline_detail")));
      info.append(box);
    } else if (view.screen === "unavailable") {
      info.append(el("div", "headline", label("unavailable")));
    }
    if (total && view.screen !== "price") {
      const row = el("div", "amount");
      row.append(el("span", "total", total.text));
      if (view.stale) row.append(el("span", "badge stale", label("stale")));
      info.append(row);
      if (view.final === false) info.append(el("div", "warning not-final", label("not_final")));
    }
    const live = view.link === "up";  // offline: no live figure is current
    if (view.live_total && view.screen !== "finished" && live) {
      info.append(el("div", "live-total", view.live_total.text));
    }
    const facts = el("div", "facts");
    const energy = view.live ? view.live.energy_wh : view.energy_wh;
    if (energy !== null && energy !== undefined && view.screen !== "price") facts.append(fact("energy", kwh(energy)));
    if (view.live && view.screen !== "finished" && live) {
      facts.append(fact("power", kw(view.live)), fact("duration", duration(view.live.duration_s)));
    }
    if (facts.childElementCount) info.append(facts);
    if (view.estimate) info.append(el("div", "estimate", label("estimate") + ": " + view.estimate.text));
    if (view.prices && view.prices.length && view.screen !== "finished" && view.screen !== "unavailable") {
      info.append(lines("prices", view.prices, view.screen === "price" || view.screen === "tariff" ? null : label("prices")));
    }
    if (view.idle_price && (view.screen === "idle" || view.screen === "charging" || view.screen === "tariff")) {
      info.append(el("div", "idle-fee" + (view.screen === "idle" ? " warning" : ""), label("idle_fee") + ": " + view.idle_price));
    }
    if (view.next_period && view.next_period.prices.length && view.screen !== "finished") {
      const when = view.next_period.from ? label("next_period") + " " + clock(view.next_period.from) : label("next_period");
      info.append(lines("next-period", view.next_period.prices, when));
    }
    if (view.preview && view.preview.length && (view.screen === "price" || view.screen === "tariff")) {
      info.append(lines("preview", view.preview, label("preview")));
    }
    if (view.message) info.append(el("div", "message", view.message));
    const backend = view.display_message;
    if (backend && backend.text) {
      // The backend's message (OCPP display message) goes first: it is what matters now.
      info.prepend(el("div", "backend-message priority-" + backend.priority, backend.text));
    }
    if (backend && backend.qr_code) qrs.push(qr(c, evse, "message", backend.qr_code, label("details")));
    else if (view.screen === "finished" && view.qr_code) qrs.push(qr(c, evse, "receipt", view.qr_code, label("receipt")));
    else if (view.payment_url) qrs.push(qr(c, evse, "payment", view.payment_url, label("pay")));
    if (view.transparency_qr && view.screen === "finished") {
      qrs.push(qr(c, evse, "transparency", view.transparency_qr, label("transparency")));
    }
    for (const src of [...c.images.keys()]) {
      if (!qrs.some((figure) => figure.dataset.src === src)) c.images.delete(src);
    }
    const content = el("div", "content" + (qrs.length ? " has-qr" : ""));
    content.append(info, ...qrs);
    const parts = [head, content];
    if (view.meter_public_key && view.screen !== "unavailable") {
      parts.push(el("div", "meter-key", label("meter_key") + ": " + view.meter_public_key));
    }
    root.replaceChildren(...parts);
  }

  // A timestamp as EVerest sent it: shown as local hours and minutes when it parses.
  function clock(text) {
    const when = new Date(text);
    if (isNaN(when.getTime())) return text;
    return when.toLocaleTimeString(page.lang, { hour: "2-digit", minute: "2-digit" });
  }

  function redraw() {
    document.documentElement.lang = page.lang;
    for (const node of document.querySelectorAll("[data-label]")) node.textContent = label(node.dataset.label);
    for (const [evse, view] of page.views) draw(evse, view);
  }

  function setLost(lost) {
    document.body.classList.toggle("lost", lost);
    $("lost").hidden = !lost;
  }

  function heard() {
    page.last = Date.now();
    setLost(false);
  }

  function connect() {
    const source = new EventSource("/events" + (only === null ? "" : "?evse=" + only));
    source.addEventListener("view", (event) => {
      heard();
      const item = JSON.parse(event.data);
      page.views.set(item.evse, item.view);
      if (item.view.language && page.config && page.config.languages.includes(item.view.language) && !page.chosen) {
        if (page.lang !== item.view.language) { page.lang = item.view.language; redraw(); return; }
      }
      draw(item.evse, item.view);
    });
    source.addEventListener("ping", heard);
    source.addEventListener("open", heard);
    source.addEventListener("error", () => {
      // The browser reconnects by itself, unless the agent refused the stream (too many pages).
      if (source.readyState === EventSource.CLOSED) setTimeout(connect, REOPEN_MS);
      setLost(true);
    });
  }

  async function start() {
    for (;;) {
      try {
        const reply = await fetch("/config.json", { cache: "no-store" });
        if (reply.ok) { page.config = await reply.json(); break; }
      } catch (error) { /* the agent is starting: try again */ }
      setLost(true);
      await new Promise((resolve) => setTimeout(resolve, REOPEN_MS));
    }
    page.lang = page.config.languages[0];
    document.title = page.config.title;
    $("title").textContent = page.config.title;
    if (page.config.logo) { $("logo").src = "/static/logo"; $("logo").hidden = false; }
    if (page.config.languages.length > 1) {
      const button = $("lang");
      button.hidden = false;
      button.textContent = page.lang.toUpperCase();
      button.addEventListener("click", () => {
        const all = page.config.languages;
        page.lang = all[(all.indexOf(page.lang) + 1) % all.length];
        page.chosen = true;   // a driver's choice wins over the message's language
        button.textContent = page.lang.toUpperCase();
        redraw();
      });
    }
    if (only !== null) document.body.classList.add("single");
    redraw();
    connect();
    setInterval(() => { if (Date.now() - page.last > LOST_AFTER_MS) setLost(true); }, 1000);
  }

  start();
})();
