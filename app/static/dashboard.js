// Relationship-manager dashboard: plain JavaScript and inline SVG, no external resources.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
let reference = null;
let current = null;   // the client shown: {id, key_values, client}

const fmt = (v) => (v === null || v === undefined || Number.isNaN(v)) ? "unknown"
  : Math.abs(v) >= 1000 ? Math.round(v).toLocaleString("en-GB")
  : Number(v.toPrecision(3)).toString();
const pct = (p) => `${(p * 100).toFixed(1)}%`;

// A grid cell's red (darker: more refusals) and the colour of the share written on it, WCAG AA (4.5:1) at every
// share. Between opacities 0.62 and 0.76 of this red neither dark nor white text reaches 4.5:1, so those
// opacities are not used: a share there takes the nearer edge (the share is written on the cell anyway).
function cellColours(share) {
  let alpha = 0.15 + 0.85 * share;
  if (alpha > 0.62 && alpha < 0.76) alpha = alpha < 0.69 ? 0.62 : 0.76;
  return { fill: `rgba(164, 22, 26, ${alpha.toFixed(3)})`, text: alpha >= 0.76 ? "#ffffff" : "#1d1d1f" };
}

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options,
    headers: { "Content-Type": "application/json", ...(options.headers || {}) } });
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) {
    const detail = body.details ? body.details.map((d) => `${d.field}: ${d.problem}`).join("; ") : body.error;
    throw new Error(detail || `HTTP ${response.status}`);
  }
  return body;
}

function el(tag, attrs = {}, text) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function showError(id, message) {
  const node = $(id);
  node.textContent = message;
  node.hidden = !message;
}

// Half-circle gauge: 0% left, 100% right; the threshold as a labelled tick; the needle at the probability.
function drawGauge(probability, threshold) {
  const svg = $("gauge");
  [...svg.querySelectorAll(":not(title):not(desc)")].forEach((n) => n.remove());
  const cx = 110, cy = 110, r = 90;
  const point = (p, radius) => [cx - radius * Math.cos(Math.PI * p), cy - radius * Math.sin(Math.PI * p)];
  const arc = (from, to, colour, dash) => {
    const [x1, y1] = point(from, r), [x2, y2] = point(to, r);
    const path = el("svg:path", { d: `M ${x1} ${y1} A ${r} ${r} 0 0 1 ${x2} ${y2}`, fill: "none",
      stroke: colour, "stroke-width": 18 });
    if (dash) path.setAttribute("stroke-dasharray", "6 3");
    svg.appendChild(path);
  };
  arc(0, threshold, "#1a6b35");
  arc(threshold, 1, "#a4161a", true);   // refusal zone is dashed as well as red
  const [tx1, ty1] = point(threshold, r - 14), [tx2, ty2] = point(threshold, r + 14);
  svg.appendChild(el("svg:line", { x1: tx1, y1: ty1, x2: tx2, y2: ty2, stroke: "#000", "stroke-width": 3 }));
  const [nx, ny] = point(Math.min(Math.max(probability, 0), 1), r - 22);
  svg.appendChild(el("svg:line", { x1: cx, y1: cy, x2: nx, y2: ny, stroke: "#1d1d1f", "stroke-width": 4,
    "stroke-linecap": "round" }));
  svg.appendChild(el("svg:circle", { cx, cy, r: 6, fill: "#1d1d1f" }));
  svg.appendChild(el("svg:text", { x: 12, y: 128, "font-size": 11 }, "0%"));
  svg.appendChild(el("svg:text", { x: 186, y: 128, "font-size": 11 }, "100%"));
  const text = `Probability of default ${pct(probability)}; threshold ${pct(threshold)}.`;
  $("gauge-desc").textContent = text;
  $("gauge-text").textContent = text;
}

function showDecision(answer) {
  const node = $("decision");
  const granted = answer.decision === "granted";
  node.className = `decision ${answer.decision}`;
  const gap = Math.abs(answer.distance_to_threshold);
  node.textContent = `${granted ? "✔ Granted" : "✖ Refused"}: ${pct(answer.probability)} probability of default, `
    + `${(gap * 100).toFixed(1)} percentage points ${granted ? "below" : "above"} the threshold of ${pct(answer.threshold)}`;
}

// A refusal shows its main reasons, a grant its main strengths (the API's reasons, said in human units).
function showReasons(reasons, decision) {
  const refused = decision === "refused";
  $("reasons-title").textContent = refused ? "Main reasons for the refusal" : "Main strengths of the application";
  const list = $("reasons");
  list.replaceChildren();
  if (!reasons.length) {
    list.appendChild(el("li", {}, refused ? "No field pushes this client towards refusal."
                                          : "No field pushes this client towards approval."));
  }
  for (const r of reasons) list.appendChild(el("li", {}, r.text));
}

// Waterfall of the contributions by source field (model score, log-odds): the base, the 8 largest fields and
// the rest, then the client's score; the threshold as a dashed line. Direction is said by ▶/◀ and the sign too.
const SHOWN_FIELDS = 8;
function drawWaterfall(explanation, answer) {
  const svg = $("waterfall");
  [...svg.querySelectorAll(":not(title):not(desc)")].forEach((n) => n.remove());
  const fields = explanation.fields.slice(0, SHOWN_FIELDS);
  const others = explanation.fields.slice(SHOWN_FIELDS);
  if (others.length) {
    fields.push({ label: `All other fields (${others.length})`,
      contribution: others.reduce((sum, f) => sum + f.contribution, 0) });
  }
  let level = explanation.base_value;
  const steps = fields.map((f) => { const from = level; level += f.contribution; return { ...f, from, to: level }; });
  const values = [explanation.base_value, level, ...steps.map((s) => s.to)];
  if (explanation.threshold_score !== null) values.push(explanation.threshold_score);
  const lo = Math.min(...values), hi = Math.max(...values), pad = (hi - lo) * 0.08 || 0.5;
  const left = 230, right = 600, row = 24, top = 26;
  const x = (v) => left + (v - (lo - pad)) / ((hi + pad) - (lo - pad)) * (right - left);
  const height = top + row * (steps.length + 2) + 24;
  svg.setAttribute("height", height);
  svg.setAttribute("viewBox", `0 0 660 ${height}`);
  const lines = [];
  const marker = (y, v, label, text) => {
    svg.appendChild(el("svg:text", { x: 8, y: y + 16 }, label));
    svg.appendChild(el("svg:rect", { x: x(v) - 4, y: y + 5, width: 8, height: 14, fill: "#1d1d1f" }));
    svg.appendChild(el("svg:text", { x: Math.min(x(v) + 10, 606), y: y + 16 }, text));
    lines.push(`${label}: ${text}`);
  };
  marker(top, explanation.base_value, "Average client", `score ${explanation.base_value.toFixed(2)}`);
  steps.forEach((s, i) => {
    const y = top + row * (i + 1);
    const up = s.contribution > 0;
    const sign = `${up ? "+" : "−"}${Math.abs(s.contribution).toFixed(2)}`;
    const short = s.label.replace(/ \(.*\)$/, "");  // "External credit score 2", without its scale
    const label = short.length > 32 ? `${short.slice(0, 31)}…` : short;
    svg.appendChild(el("svg:text", { x: 8, y: y + 16 }, label));
    svg.appendChild(el("svg:rect", { x: Math.min(x(s.from), x(s.to)), y: y + 4, height: 16,
      width: Math.max(Math.abs(x(s.to) - x(s.from)), 1), fill: up ? "#a4161a" : "#1a6b35" }));
    svg.appendChild(el("svg:text", { x: Math.min(Math.max(x(s.from), x(s.to)) + 6, 606), y: y + 16 },
      `${sign} ${up ? "▶" : "◀"}`));
    lines.push(`${s.label}: ${sign}, towards ${up ? "refusal" : "approval"}`);
  });
  marker(top + row * (steps.length + 1), level, "This client",
    `score ${level.toFixed(2)}: ${pct(answer.probability)} probability of default`);
  if (explanation.threshold_score !== null) {
    const tx = x(explanation.threshold_score);
    svg.appendChild(el("svg:line", { x1: tx, y1: top - 6, x2: tx, y2: height - 20, stroke: "#1d1d1f",
      "stroke-width": 2, "stroke-dasharray": "5 4" }));
    svg.appendChild(el("svg:text", { x: tx - 28, y: top - 10 }, "threshold"));
    lines.push(`Threshold: score ${explanation.threshold_score.toFixed(2)} (${pct(answer.threshold)})`);
  }
  svg.appendChild(el("svg:text", { x: left, y: height - 4 }, "model score (log-odds of default) →"));
  $("waterfall-desc").textContent = lines.join("; ");
  const list = $("waterfall-text");
  list.replaceChildren(...lines.map((l) => el("li", {}, l)));
}

// One row per key field: granted and refused 5-95% ranges with medians, and the client's value.
function showDistributions(keyValues) {
  const box = $("distributions");
  box.replaceChildren();
  const q = reference.quantiles, mid = q.indexOf(0.5);
  for (const field of reference.key_fields) {
    const d = reference.distributions[field] || {};
    // a day count (negative, before the application) is said in years; quantiles flip with the sign
    const days = field.startsWith("DAYS_");
    const years = (values) => values.map((u) => Math.abs(u) / 365.25).sort((a, b) => a - b);
    const g = days ? years(d.granted || []) : (d.granted || []), f = days ? years(d.refused || []) : (d.refused || []);
    const raw = keyValues[field];
    const v = days && raw !== null && raw !== undefined ? Math.abs(raw) / 365.25 : raw;
    if (!g.length || !f.length) continue;
    const lo = Math.min(g[0], f[0], v ?? Infinity), hi = Math.max(g[g.length - 1], f[f.length - 1], v ?? -Infinity);
    const x = (value) => 10 + 580 * ((value - lo) / ((hi - lo) || 1));
    const row = el("div", { class: "dist" });
    const label = days ? (reference.labels[field] || field).replace(/^days/, "years").replace(/ \(negative\)/, "")
      : (reference.labels[field] || field);
    row.appendChild(el("span", {}, label));
    const share = /\bshare\b/.test(label);  // a share is said as a percentage
    const say = (u) => (share && u !== null && u !== undefined ? pct(u) : fmt(u));
    const svg = el("svg:svg", { viewBox: "0 0 600 46", role: "img", "aria-label":
      `${label}: client ${say(v)}; granted clients median ${say(g[mid])}, refused clients median ${say(f[mid])}` });
    const band = (values, y, colour, hatch) => {
      svg.appendChild(el("svg:rect", { x: x(values[0]), y, width: Math.max(2, x(values[values.length - 1]) - x(values[0])),
        height: 12, fill: hatch ? "url(#hatch)" : colour, stroke: colour }));
      svg.appendChild(el("svg:line", { x1: x(values[mid]), x2: x(values[mid]), y1: y - 3, y2: y + 15,
        stroke: "#000", "stroke-width": 2 }));
    };
    const defs = el("svg:defs");
    const pattern = el("svg:pattern", { id: "hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse",
      patternTransform: "rotate(45)" });
    pattern.appendChild(el("svg:rect", { width: 6, height: 6, fill: "#f3d6d6" }));
    pattern.appendChild(el("svg:line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#a4161a", "stroke-width": 3 }));
    defs.appendChild(pattern);
    svg.appendChild(defs);
    band(g, 6, "#1a6b35", false);
    band(f, 26, "#a4161a", true);
    if (v !== null && v !== undefined) {
      const cx = x(v);
      svg.appendChild(el("svg:path", { d: `M ${cx} 14 l 7 9 l -7 9 l -7 -9 z`, fill: "#f5a623", stroke: "#000" }));
    }
    row.appendChild(svg);
    row.appendChild(el("span", { class: "text" }, `Client: ${say(v)} · granted median ${say(g[mid])} `
      + `(${say(g[0])}–${say(g[g.length - 1])}) · refused median ${say(f[mid])} (${say(f[0])}–${say(f[f.length - 1])})`));
    box.appendChild(row);
  }
}

function showFields(fields) {
  const dl = $("fields");
  dl.replaceChildren();
  const names = { NAME_CONTRACT_TYPE: "Contract", CODE_GENDER: "Gender", NAME_INCOME_TYPE: "Income type",
    NAME_EDUCATION_TYPE: "Education", NAME_FAMILY_STATUS: "Family status", OCCUPATION_TYPE: "Occupation",
    AMT_INCOME_TOTAL: "Yearly income", AMT_CREDIT: "Credit amount", AMT_ANNUITY: "Yearly annuity",
    AMT_GOODS_PRICE: "Goods price", CNT_CHILDREN: "Children" };
  for (const [k, label] of Object.entries(names)) {
    dl.appendChild(el("dt", {}, label));
    const v = fields[k];
    dl.appendChild(el("dd", {}, typeof v === "number" ? fmt(v) : (v ?? "unknown")));
  }
  if (fields.DAYS_BIRTH) {
    dl.appendChild(el("dt", {}, "Age"));
    dl.appendChild(el("dd", {}, `${Math.floor(-fields.DAYS_BIRTH / 365.25)} years`));
  }
}

async function openClient(id) {
  showError("find-error", "");
  try {
    const [summary, detail] = await Promise.all([api(`/clients/${id}`), api(`/clients/${id}/explain`)]);
    current = { id, client: summary.client, reasons: detail.explanation.reasons.map((r) => r.text) };
    $("r-id").textContent = id;
    drawGauge(detail.probability, detail.threshold);
    showDecision(detail);
    showFields(summary.client);
    showReasons(detail.explanation.reasons, detail.decision);
    drawWaterfall(detail.explanation, detail);
    showDistributions(detail.key_values);
    $("w-income").value = summary.client.AMT_INCOME_TOTAL == null ? "" : Math.round(summary.client.AMT_INCOME_TOTAL);
    const app = summary.client;
    $("w-goods").value = app.AMT_GOODS_PRICE == null ? "" : Math.round(app.AMT_GOODS_PRICE);
    $("w-employed").value = app.DAYS_EMPLOYED == null ? "" : (Math.abs(app.DAYS_EMPLOYED) / 365.25).toFixed(1);
    $("w-car").value = app.OWN_CAR_AGE ?? "";
    $("w-children").value = app.CNT_CHILDREN ?? "";
    $("w-family").value = app.CNT_FAM_MEMBERS ?? "";
    $("w-credit").value = summary.client.AMT_CREDIT == null ? "" : Math.round(summary.client.AMT_CREDIT);
    $("w-annuity").value = summary.client.AMT_ANNUITY == null ? "" : Math.round(summary.client.AMT_ANNUITY);
    $("whatif-result").textContent = "";
    showError("whatif-error", "");
    $("result").hidden = false;
    $("result").focus();
  } catch (error) {
    showError("find-error", error.message);
  }
}

async function whatIf(event) {
  event.preventDefault();
  showError("whatif-error", "");
  const body = {};
  for (const input of event.target.querySelectorAll("input")) {
    if (input.value === "" || input.hidden) continue;
    // years in the job are sent as the Kaggle field: days before the application, negative
    body[input.name] = input.dataset.unit === "years" ? -Math.round(Number(input.value) * 365.25) : Number(input.value);
  }
  try {
    const answer = await api(`/clients/${current.id}/whatif`, { method: "POST", body: JSON.stringify(body) });
    drawGauge(answer.probability, answer.threshold);
    showDecision(answer);
    showReasons(answer.explanation.reasons, answer.decision);
    drawWaterfall(answer.explanation, answer);
    showDistributions(answer.key_values);
    const now = answer.explanation.reasons.map((r) => r.text);
    const changed = now.filter((t) => !current.reasons.includes(t));
    $("whatif-result").textContent = `With these amounts: ${answer.decision}, ${pct(answer.probability)} `
      + "probability of default. " + (changed.length ? `Reasons that changed: ${changed.join("; ")}.`
        : "The main reasons are unchanged.");
  } catch (error) {
    showError("whatif-error", error.message);
  }
}

// What drives the model: mean |contribution| by field on the hold-out, and the threshold in cost terms.
function showGlobal() {
  const c = reference.cost;
  $("threshold-meaning").textContent = `A client is refused when the probability of default reaches `
    + `${pct(reference.threshold)}. A granted defaulter costs ${c.fn_cost}, a refused good client ${c.fp_cost}: `
    + `at this threshold the hold-out cost is ${c.holdout_cost_per_client.toFixed(3)} per client, `
    + `${c.holdout_cost_vs_accept_all.toFixed(2)} × the cost of accepting everyone, and `
    + `${pct(c.approval_rate)} of applicants are approved.`;
  const drivers = reference.drivers.slice(0, 10);
  const svg = $("drivers");
  [...svg.querySelectorAll(":not(title):not(desc)")].forEach((n) => n.remove());
  const top = Math.max(...drivers.map((d) => d.mean_abs_contribution), 1e-9);
  const lines = [];
  drivers.forEach((d, i) => {
    const y = 8 + i * 26;
    const label = d.label.replace(/ \(.*\)$/, "");
    svg.appendChild(el("svg:text", { x: 8, y: y + 15 }, label.length > 32 ? `${label.slice(0, 31)}…` : label));
    svg.appendChild(el("svg:rect", { x: 230, y: y + 3, height: 16, width: Math.max(360 * d.mean_abs_contribution / top, 1),
      fill: "#24466b" }));
    svg.appendChild(el("svg:text", { x: 236 + 360 * d.mean_abs_contribution / top, y: y + 15 },
      d.mean_abs_contribution.toFixed(2)));
    lines.push(`${d.label}: moves the score by ${d.mean_abs_contribution.toFixed(2)} on average`);
  });
  svg.setAttribute("height", 16 + drivers.length * 26);
  svg.setAttribute("viewBox", `0 0 660 ${16 + drivers.length * 26}`);
  $("drivers-desc").textContent = lines.join("; ");
  $("drivers-text").replaceChildren(...lines.map((l) => el("li", {}, l)));
}

// Similar clients: filters from the reference, a searchable feature list by meaning; aggregates come back.
function setUpCompare() {
  const box = $("compare-filters");
  for (const [name, spec] of Object.entries(reference.filters)) {
    box.appendChild(el("label", { for: `f-${name}` }, spec.label[0].toUpperCase() + spec.label.slice(1)));
    const select = el("select", { id: `f-${name}`, name });
    select.appendChild(el("option", { value: "" }, "any"));
    for (const level of spec.levels) select.appendChild(el("option", { value: level }, level));
    box.appendChild(select);
  }
  $("feature-list").replaceChildren(...reference.features.map((f) => el("option", { value: f.label })));
  const gridLabels = reference.features.filter((f) => reference.grid_features.includes(f.name));
  $("grid-list").replaceChildren(...gridLabels.map((f) => el("option", { value: f.label })));
  $("c-feature").value = reference.features[0] ? reference.features[0].label : "";
  $("compare").addEventListener("submit", compareClient);
}

function featureName(text) {
  const t = text.trim().toLowerCase();
  const hit = reference.features.find((f) => f.label.toLowerCase() === t || f.name.toLowerCase() === t);
  return hit ? hit.name : null;
}

const range = (s) => s.quantiles ? `median ${fmt(s.quantiles[2])} (middle half ${fmt(s.quantiles[1])}–`
  + `${fmt(s.quantiles[3])})` : "too few values to show";

function drawGrid(answer) {
  const grid = answer.grid, size = 34, left = 70, top = 10, n = grid.clients.length;
  const svg = el("svg:svg", { class: "waterfall", role: "img", width: left + n * size + 150,
    height: top + n * size + 50, "aria-label": "" });
  const xs = grid.x_edges, ys = grid.y_edges;
  let cells = 0;
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      const share = grid.refused_share[r][c];
      const y = top + (n - 1 - r) * size, x = left + c * size;
      if (share === null) {
        svg.appendChild(el("svg:rect", { x, y, width: size - 2, height: size - 2, fill: "#f0f0f2" }));
        continue;
      }
      cells += 1;
      const colours = cellColours(share);
      svg.appendChild(el("svg:rect", { x, y, width: size - 2, height: size - 2, class: "cell",
        fill: colours.fill }));
      svg.appendChild(el("svg:text", { x: x + 4, y: y + 21, "font-size": 10, class: "cell-text",
        fill: colours.text }, `${Math.round(share * 100)}%`));
    }
  }
  const cx = answer.feature.client, cy = answer.versus.client;
  const at = (v, edges) => (v - edges[0]) / (edges[edges.length - 1] - edges[0]) * n * size;
  let where = "outside the grid";
  if (cx !== null && cy !== null) {
    const px = left + Math.min(Math.max(at(cx, xs), 0), n * size), py = top + n * size - Math.min(Math.max(at(cy, ys), 0), n * size);
    svg.appendChild(el("svg:path", { d: `M ${px} ${py - 8} L ${px + 8} ${py} L ${px} ${py + 8} L ${px - 8} ${py} Z`,
      fill: "#f5a623", stroke: "#1d1d1f", "stroke-width": 2 }));
    where = `at ${fmt(cx)} and ${fmt(cy)} (the diamond)`;
  }
  svg.appendChild(el("svg:text", { x: left, y: top + n * size + 18 }, `${answer.feature.label} → (${fmt(xs[0])} to ${fmt(xs[xs.length - 1])})`));
  svg.appendChild(el("svg:text", { x: 4, y: top + 12 }, "↑ second"));
  const text = `Share of refused clients in each cell of ${answer.feature.label} (across) and ${answer.versus.label} `
    + `(up), among the group: ${cells} cells with at least 5 clients, the percentage written in each; this client is ${where}.`;
  svg.setAttribute("aria-label", text);
  return [svg, el("p", { class: "help", id: "grid-text" }, text)];
}

async function compareClient(event) {
  event.preventDefault();
  showError("compare-error", "");
  const feature = featureName($("c-feature").value);
  const versusText = $("c-versus").value.trim();
  const versus = versusText ? featureName(versusText) : null;
  if (!feature || (versusText && !versus)) {
    showError("compare-error", "Pick a feature from the list (type part of its meaning).");
    return;
  }
  const query = new URLSearchParams({ feature });
  if (versus) query.set("versus", versus);
  for (const name of Object.keys(reference.filters)) {
    const value = $(`f-${name}`).value;
    if (value) query.set(name, value);
  }
  try {
    const answer = await api(`/clients/${current.id}/compare?${query}`);
    const f = answer.feature, unit = f.unit ? ` ${f.unit}` : "";
    const out = [el("p", { id: "compare-text" }, `${f.label}: this client ${fmt(f.client)}${unit}; the group of `
      + `${answer.group.clients.toLocaleString("en-GB")} similar clients ${range(f.group)}; everyone `
      + `${range(f.everyone)}. The model grants ${pct(answer.group.granted_share)} of the group and `
      + `${pct(answer.everyone.granted_share)} of everyone.`)];
    if (answer.grid) out.push(...drawGrid(answer));
    $("compare-result").replaceChildren(...out);
  } catch (error) {
    showError("compare-error", error.message);
  }
}

async function start() {
  try {
    reference = await api("/reference");
    showGlobal();
    setUpCompare();
    // what-if fields the model does not read are hidden (their change could not move the score)
    for (const input of document.querySelectorAll("#whatif input.optional")) {
      const used = reference.what_if_fields.includes(input.name);
      input.hidden = !used;
      document.querySelector(`label[for=${input.id}]`).hidden = !used;
    }
    const list = await api("/clients?limit=200");
    if (list.total === 0) {
      showError("find-error", "This deployment serves no known clients: the model's global view is shown, and "
        + "applications are scored through the API (POST /predict).");
    }
    const select = $("client-list");
    for (const c of list.clients) {
      select.appendChild(el("option", { value: c.SK_ID_CURR }, `${c.SK_ID_CURR} · ${c.decision} · ${pct(c.probability)}`));
    }
  } catch (error) {
    showError("find-error", `Cannot reach the API: ${error.message}`);
  }
  $("find").addEventListener("submit", (e) => { e.preventDefault(); openClient($("client-id").value.trim()); });
  const select = $("client-list");
  select.addEventListener("change", () => { $("client-id").value = select.value; openClient(select.value); });
  select.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); openClient(select.value); } });
  $("whatif").addEventListener("submit", whatIf);
  $("w-reset").addEventListener("click", () => openClient(current.id));
  $("print").addEventListener("click", () => { $("printed-on").textContent = new Date().toLocaleDateString("en-GB"); window.print(); });
}

document.addEventListener("DOMContentLoaded", start);
