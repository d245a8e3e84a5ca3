// shopstream local console: four pages over /console/api/*, refreshed in place (no page reload).
"use strict";

const REFRESH_MS = { map: 3000, dlq: 5000, analytics: 5000, story: 3000 };
const state = { page: null, timer: null, busy: false, diagrams: {}, refreshes: 0 };
window.consoleState = state; // read by the browser tests: refreshes happen without a reload

if (window.mermaid) {
  window.mermaid.initialize({ startOnLoad: false, securityLevel: "loose", flowchart: { htmlLabels: true } });
}

const $ = (selector) => document.querySelector(selector);
const esc = (value) => String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

async function api(path, options) {
  const response = await fetch(path, { cache: "no-store", ...options });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.message || `${response.status}`);
  return body;
}

let diagramCount = 0;
async function renderDiagram(container, text) {
  if (state.diagrams[container.id] === text) return; // unchanged: keep the drawing (no flicker)
  state.diagrams[container.id] = text;
  if (!window.mermaid) {
    container.innerHTML = `<p class="empty">Mermaid is not installed (make node); the diagram's source:</p><pre>${esc(text)}</pre>`;
    return;
  }
  const { svg } = await window.mermaid.render(`diagram${++diagramCount}`, text);
  container.innerHTML = svg;
}

function setStatus(text) { $("#status").textContent = text; }

// --- system map --------------------------------------------------------------------------------
async function showMap() {
  const map = await api("/console/api/map");
  await renderDiagram($("#map-diagram"), map.mermaid);
  $("#map-topics tbody").innerHTML = map.topics.map((t) => `<tr data-topic="${esc(t.name)}"><td>${esc(t.name)}</td>
    <td class="num partitions">${t.partitions}</td><td class="num records">${t.records}</td><td class="num rate">${t.ratePerSecond}</td></tr>`).join("");
  $("#map-groups tbody").innerHTML = map.services.flatMap((s) => s.handlers.map((h) => `<tr data-group="${esc(h.group)}">
    <td>${esc(h.group)}</td><td>${esc(h.topic)}</td>
    <td class="num lag ${h.lag ? "lagging" : ""}">${h.lag ?? "?"}</td></tr>`)).join("");
}

// --- dead letters ------------------------------------------------------------------------------
function showBytes(label, shown) {
  if (!shown) return "";
  if (shown.none) return `<div>${label}: <i>none</i></div>`;
  const kind = shown.text !== undefined ? "text" : "hex";
  return `<div>${label} (${kind}, ${shown.bytes} bytes):<pre class="${label}-${kind}">${esc(shown.text ?? shown.hex)}</pre></div>`;
}

function messageHtml(queue, m) {
  const b = m.body;
  let head;
  if (b.kind === "poison") {
    head = `<span class="reason">${esc(b.reason)}</span> ${esc(b.topic)}[${b.partition}]@${b.offset}
      <div class="detail">${esc(b.detail)}</div>${showBytes("key", m.key)}${showBytes("value", m.value)}`;
  } else if (b.KafkaBatchInfo) {
    const k = b.KafkaBatchInfo;
    head = `<span class="reason">${esc(b.requestContext?.condition || "retries exhausted")}</span>
      ${esc(k.topic)}[${k.partition}]@${k.firstOffset}..${k.lastOffset} (${k.batchSize} records, read back from Kafka on redrive)`;
  } else {
    head = `<span class="reason">relay ${esc(b.requestContext?.condition || "failure")}</span> ${esc(m.summary)}`;
  }
  return `<div class="message" data-message-id="${esc(m.messageId)}">${head}
    <div><button class="redrive" data-queue="${esc(queue)}" data-id="${esc(m.messageId)}">Redrive</button>
    <button class="discard" data-queue="${esc(queue)}" data-id="${esc(m.messageId)}">Discard</button>
    <small>message ${esc(m.messageId)}</small></div></div>`;
}

async function showDlq() {
  const dlq = await api("/console/api/dlq");
  const waiting = dlq.queues.filter((q) => q.depth > 0);
  const total = waiting.reduce((n, q) => n + q.depth, 0);
  $("#dlq-summary").innerHTML = `<p><b>${total}</b> message(s) in ${waiting.length} of ${dlq.queues.length} queues
    (${dlq.queues.filter((q) => q.kind === "relay").length} relay failure queues).</p>`;
  $("#dlq-messages").innerHTML = waiting.length ? waiting.map((q) => `<div class="queue" data-queue="${esc(q.queue)}">
    <h3>${esc(q.queue)} <small>(${q.kind === "relay" ? "outbox relay failures" : "dead letters"}, ${q.depth})</small></h3>
    ${q.messages.map((m) => messageHtml(q.queue, m)).join("")}</div>`).join("") : `<p class="empty">Every queue is empty.</p>`;
}

async function dlqAction(action, queue, messageId) {
  state.busy = true;
  try {
    const result = await api(`/console/api/dlq/${action}`, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ queue, messageId }) });
    const output = $("#dlq-output");
    output.hidden = false;
    output.textContent = `${action} ${queue} ${messageId}: ${result.ok ? "done" : "not done"}\n${result.output.join("\n")}`;
  } catch (error) {
    $("#dlq-output").hidden = false;
    $("#dlq-output").textContent = `${action} failed: ${error.message}`;
  } finally {
    state.busy = false;
  }
  await refresh();
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button.redrive, button.discard");
  if (!button) return;
  if (button.classList.contains("discard") && !window.confirmDiscard?.(button.dataset.id)) return;
  button.disabled = true;
  dlqAction(button.classList.contains("redrive") ? "redrive" : "discard", button.dataset.queue, button.dataset.id);
});
window.confirmDiscard = (id) => window.confirm(`Delete message ${id} for good?`);

// --- an order's story ----------------------------------------------------------------------------
// Searches can overlap (a new one while the last is still answering): only the newest may draw.
let storySearch = 0;

async function showStory(query) {
  const search = ++storySearch;
  state.traceQuery = null;
  $("#story-trace").hidden = true;
  $("#story-trace").dataset.drawn = "";
  if (!query) { $("#story-head").innerHTML = `<p class="empty">Search by an orderId or a correlationId.</p>`; return; }
  $("#story-q").value = query;
  try {
    const story = await api(`/console/api/story?q=${encodeURIComponent(query)}`);
    if (search !== storySearch) return;
    $("#story-head").innerHTML = `<p>correlation id <code>${esc(story.correlationId)}</code>
      ${story.order ? `· order <code>${esc(story.order.orderId)}</code> is <b class="order-status">${esc(story.order.status)}</b>` : ""}
      · <span class="event-count">${story.events.length}</span> events across
      ${new Set(story.events.map((e) => e.service)).size} services in ${story.spanMs} ms</p>`;
    await renderDiagram($("#story-diagram"), story.mermaid);
    if (search !== storySearch) return;
    $("#story-events tbody").innerHTML = story.events.map((e) => `<tr><td class="num">${e.sinceStartMs}</td>
      <td>${esc(e.eventType)}</td><td>${esc(e.service)}</td><td class="num">${e.sinceCauseMs ?? "—"}</td>
      <td>${esc(e.timestamp)}</td><td><code>${esc(e.eventId.slice(0, 8))}</code></td></tr>`).join("");
    state.traceQuery = story.order?.orderId || story.correlationId;
    await showTrace(state.traceQuery, search);
  } catch (error) {
    if (search !== storySearch) return;
    state.diagrams["story-diagram"] = null;
    $("#story-head").innerHTML = `<p class="empty">${esc(error.message)}</p>`;
    $("#story-diagram").innerHTML = "";
    $("#story-events tbody").innerHTML = "";
  }
}

// --- an order's trace (local/traces.py), under its causal graph; it grows as the saga goes on ---------
const SHOWN_DETAIL = ["shopstream.event_type", "shopstream.handler"];

function waterfallHtml(rows) {
  if (!rows.length) return `<p class="empty">no spans</p>`;
  const total = Math.max(...rows.map((r) => r.startMs + r.durationMs));
  const body = rows.map((r) => {
    const attributes = r.attributes || {};
    const detail = SHOWN_DETAIL.map((k) => attributes[k]).find(Boolean);
    const again = attributes["shopstream.redelivery"];
    const title = [`+${r.startMs} ms, ${r.durationMs} ms`, ...Object.entries(attributes).map(([k, v]) => `${k}: ${v}`)].join("\n");
    return `<tr class="span-row kind-${esc(r.kind)}${r.error ? " failed" : ""}" data-kind="${esc(r.kind)}" data-depth="${r.depth}" title="${esc(title)}">
      <td class="span-name" style="padding-left:${6 + 16 * r.depth}px">${esc(r.name)}${detail ? ` <small>${esc(detail)}</small>` : ""}${again ? ` <small class="again">(${esc(again)})</small>` : ""}${r.error ? ` <small class="again">failed</small>` : ""}</td>
      <td class="span-service">${esc(r.service)}</td><td class="num span-ms">${r.durationMs.toFixed(1)}</td>
      <td class="span-bar"><div class="track"><div class="bar-fill" style="left:${r.bar.left}%;width:${r.bar.width}%"></div></div></td></tr>`;
  }).join("");
  return `<table class="waterfall"><colgroup><col style="width:34%"><col style="width:9%"><col style="width:7%"><col></colgroup>
    <thead><tr><th>span</th><th>service</th><th>ms</th><th>0 → ${total.toFixed(1)} ms</th></tr></thead><tbody>${body}</tbody></table>`;
}

function linkedHtml(linked) {
  if (!linked.length) return "";
  return `<h3>Linked traces <small>records of this trace delivered again (a redelivery, a redrive, a replay): each starts a trace of its own, linked to this one</small></h3>` +
    linked.map((l) => {
      const root = l.rows.find((r) => r.depth === 0) || { name: "?", service: "", attributes: {} };
      const how = root.attributes?.["shopstream.redelivery"] || "linked";
      return `<details class="linked-trace" data-trace-id="${esc(l.traceId)}"><summary><b class="linked-kind">${esc(how)}</b>
        ${esc(root.name)} <small>${esc(root.service)}</small> · trace <code>${esc(l.traceId)}</code> ·
        ${l.rows.filter((r) => r.kind !== "wait").length} span(s)</summary>${waterfallHtml(l.rows)}</details>`;
    }).join("");
}

async function showTrace(query, search) {
  const section = $("#story-trace");
  try {
    const trace = await api(`/console/api/trace?q=${encodeURIComponent(query)}`);
    if (search !== storySearch) return;
    const drawn = `${trace.traceId}:${trace.spans}:${trace.linked.map((l) => `${l.traceId}:${l.rows.length}`).join(",")}`;
    section.hidden = false;
    if (section.dataset.drawn === drawn) return; // unchanged: keep the rows (and any linked trace opened)
    section.dataset.drawn = drawn;
    const last = Math.max(...trace.rows.map((r) => r.startMs + r.durationMs));
    $("#trace-head").innerHTML = `<code class="trace-id">${esc(trace.traceId)}</code> · <span class="span-count">${trace.spans}</span>
      spans in ${last.toFixed(1)} ms · <code>make ops ARGS="trace ${esc(query)}"</code>`;
    $("#trace-waterfall").innerHTML = waterfallHtml(trace.rows);
    $("#trace-linked").innerHTML = linkedHtml(trace.linked);
  } catch (error) {
    if (search !== storySearch) return;
    section.hidden = false;
    section.dataset.drawn = "";
    $("#trace-head").textContent = "";
    $("#trace-waterfall").innerHTML = `<p class="empty">${esc(error.message)}</p>`;
    $("#trace-linked").innerHTML = "";
    if (!/yet/.test(error.message)) state.traceQuery = null; // this runtime keeps no traces: do not ask again
  }
}

async function refreshTrace() {
  if (state.busy || !state.traceQuery) return;
  await showTrace(state.traceQuery, storySearch);
}

$("#story-form").addEventListener("submit", (event) => {
  event.preventDefault();
  location.hash = `#story?q=${encodeURIComponent($("#story-q").value.trim())}`;
});

// --- live analytics ------------------------------------------------------------------------------
function money(revenue) {
  return Object.entries(revenue).map(([currency, minor]) => `${(minor / 100).toFixed(2)} ${currency}`).join(", ") || "—";
}

function chart(windows) {
  const width = 900, height = 120, step = width / Math.max(windows.length, 1);
  const top = Math.max(1, ...windows.map((w) => Math.max(w.ordersPlaced, w.paymentAttempts)));
  const bars = windows.map((w, i) => {
    const placed = (w.ordersPlaced / top) * (height - 20), failed = (w.paymentsFailed / top) * (height - 20);
    return `<rect class="bar" x="${i * step + 2}" y="${height - 14 - placed}" width="${step / 2 - 2}" height="${placed}"><title>${w.start}: ${w.ordersPlaced} placed</title></rect>
      <rect class="bar failed" x="${i * step + step / 2}" y="${height - 14 - failed}" width="${step / 2 - 2}" height="${failed}"><title>${w.start}: ${w.paymentsFailed} payments failed</title></rect>
      ${i % Math.ceil(windows.length / 10) === 0 ? `<text class="axis" x="${i * step}" y="${height - 2}">${w.start.slice(11, 16)}</text>` : ""}`;
  }).join("");
  return `<svg width="${width}" height="${height}" role="img" aria-label="orders placed (blue) and payments failed (red) per minute">${bars}</svg>`;
}

async function showAnalytics() {
  const minutes = $("#analytics-minutes").value;
  const live = await api(`/console/api/analytics?minutes=${minutes}`);
  const sum = (field) => live.windows.reduce((n, w) => n + w[field], 0);
  const revenue = {};
  const cancelled = {};
  for (const w of live.windows) {
    for (const [c, v] of Object.entries(w.revenue)) revenue[c] = (revenue[c] || 0) + v;
    for (const [r, v] of Object.entries(w.ordersCancelled)) cancelled[r] = (cancelled[r] || 0) + v;
  }
  const attempts = sum("paymentAttempts"), failed = sum("paymentsFailed");
  const latest = [...live.windows].reverse().find((w) => w.confirmLatencyMs.count);
  const card = (id, value, label) => `<div class="card" id="${id}"><div class="value">${esc(value)}</div><div class="label">${esc(label)}</div></div>`;
  $("#analytics-cards").innerHTML = [
    card("card-placed", sum("ordersPlaced"), `orders placed (${minutes} min)`),
    card("card-confirmed", sum("ordersConfirmed"), "confirmed"),
    card("card-cancelled", Object.values(cancelled).reduce((a, b) => a + b, 0),
      `cancelled: ${Object.entries(cancelled).map(([r, n]) => `${r} ${n}`).join(", ") || "none"}`),
    card("card-revenue", money(revenue), "revenue"),
    card("card-failure", attempts ? `${((100 * failed) / attempts).toFixed(1)}%` : "—", `payment failures (${failed}/${attempts})`),
    card("card-latency", latest ? `${latest.confirmLatencyMs.p50} / ${latest.confirmLatencyMs.p95} ms` : "—", "created→confirmed p50 / p95 (latest window)"),
    card("card-alerts", live.alerts.length, "open alerts"),
  ].join("");
  $("#analytics-chart").innerHTML = chart(live.windows);
  $("#analytics-alerts tbody").innerHTML = live.alerts.length ? live.alerts.map((a) => `<tr class="alert-row">
    <td>${esc(a.detectedAt)}</td><td>${esc(a.type)}</td><td>${esc(a.about)}</td>
    <td><code>${esc(JSON.stringify(a.summary))}</code></td></tr>`).join("") : `<tr><td colspan="4" class="empty">none open</td></tr>`;
  $("#analytics-windows tbody").innerHTML = [...live.windows].reverse().map((w) => `<tr data-window="${esc(w.start)}">
    <td>${esc(w.start.slice(11, 16))}</td><td class="num placed">${w.ordersPlaced}</td><td class="num">${w.ordersConfirmed}</td>
    <td>${esc(Object.entries(w.ordersCancelled).map(([r, n]) => `${r} ${n}`).join(", "))}</td><td>${esc(money(w.revenue))}</td>
    <td class="num">${w.paymentAttempts}</td><td class="num">${w.paymentFailureRate === null ? "—" : (100 * w.paymentFailureRate).toFixed(0) + "%"}</td>
    <td class="num">${w.confirmLatencyMs.count ? `${w.confirmLatencyMs.p50} / ${w.confirmLatencyMs.p95} ms` : "—"}</td>
    <td>${w.closed ? "closed" : "open"}</td></tr>`).join("");
}
$("#analytics-minutes").addEventListener("change", () => refresh());

// --- pages and refresh ---------------------------------------------------------------------------
const PAGES = { map: showMap, dlq: showDlq, analytics: showAnalytics };

async function refresh() {
  if (state.busy) return;
  const page = state.page;
  try {
    if (PAGES[page]) await PAGES[page]();
    state.refreshes += 1;
    setStatus(`updated ${new Date().toLocaleTimeString()}`);
  } catch (error) {
    setStatus(`error: ${error.message}`);
  }
}

function route() {
  const [name, params] = (location.hash.slice(1) || "map").split("?");
  const page = ["map", "dlq", "story", "analytics"].includes(name) ? name : "map";
  state.page = page;
  document.querySelectorAll(".page").forEach((p) => p.classList.toggle("active", p.id === `page-${page}`));
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === page));
  clearInterval(state.timer);
  if (page === "story") {
    showStory(new URLSearchParams(params || "").get("q") || "");
    state.timer = setInterval(refreshTrace, REFRESH_MS.story); // the trace grows as the saga goes on
    return;
  }
  refresh();
  state.timer = setInterval(refresh, REFRESH_MS[page]);
}

window.addEventListener("hashchange", route);
route();
