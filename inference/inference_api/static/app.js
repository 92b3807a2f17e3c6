// The prediction page: builds the form from the schema the server embeds, calls /predict and
// /predict/csv, and shows the answers. No framework and no build step.
"use strict";

const config = JSON.parse(document.getElementById("forest-config").textContent);
const $ = (id) => document.getElementById(id);

function buildForm() {
  const fields = $("fields");
  for (const column of config.columns) {
    const label = document.createElement("label");
    label.textContent = column.replaceAll("_", " ");
    let input;
    if (column in config.numeric) {
      const [low, high] = config.numeric[column];
      input = document.createElement("input");
      Object.assign(input, { type: "number", min: low, max: high, step: 1, required: true });
      label.title = `${low} to ${high}`;
    } else {
      input = document.createElement("select");
      const options = column === "Wilderness_Area" ? config.wilderness : config.soil;
      for (const value of options) input.add(new Option(value, value));
    }
    input.name = column;
    input.id = `field-${column}`;
    input.value = config.example[column];
    label.appendChild(input);
    fields.appendChild(label);
  }
}

function showError(element, message) {
  element.textContent = message;
  element.hidden = false;
}

// A 422 body holds a summary in `detail` and one message per problem (up to 50): show the
// problems one a line when there are any, else the summary.
async function errorText(response) {
  try {
    const body = await response.json();
    const lines = (body.errors || []).map((e) => e.message);
    return lines.length ? lines.join("\n") : body.detail;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

async function predictOne(event) {
  event.preventDefault();
  $("error").hidden = true;
  const record = {};
  for (const column of config.columns) {
    const value = $(`field-${column}`).value;
    record[column] = column in config.numeric ? Number(value) : value;
  }
  const response = await fetch("/predict", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(record),
  });
  if (!response.ok) {
    $("result").hidden = true;
    showError($("error"), await errorText(response));
    return;
  }
  const answer = await response.json();
  $("result-name").textContent = answer.cover_type_name;
  $("result-id").textContent = answer.cover_type;
  $("result-version").textContent = answer.model_version;
  const body = $("probabilities").tBodies[0];
  body.replaceChildren();
  const sorted = Object.entries(answer.probabilities).sort((a, b) => b[1] - a[1]);
  for (const [name, p] of sorted) {
    const row = body.insertRow();
    row.insertCell().textContent = name;
    row.insertCell().textContent = `${(100 * p).toFixed(1)} %`;
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${Math.round(200 * p)}px`;
    row.insertCell().appendChild(bar);
  }
  $("result").hidden = false;
}

function parseCsvLine(line) {
  // Enough for the preview of our own result file (no quoted commas in its values).
  return line.split(",");
}

async function predictCsv() {
  $("csv-error").hidden = true;
  $("csv-result").hidden = true;
  const file = $("csv-file").files[0];
  if (!file) {
    showError($("csv-error"), "Choose a CSV file first.");
    return;
  }
  const response = await fetch("/predict/csv", {
    method: "POST",
    headers: { "Content-Type": "text/csv" },
    body: await file.text(),
  });
  if (!response.ok) {
    showError($("csv-error"), await errorText(response));
    return;
  }
  const text = await response.text();
  const lines = text.trim().split("\n");
  const link = $("csv-download");
  if (link.href) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
  $("csv-summary").textContent = `${lines.length - 1} rows predicted.`;
  const table = $("csv-preview");
  table.replaceChildren();
  lines.slice(0, 11).forEach((line, i) => {
    const row = table.insertRow();
    for (const cell of parseCsvLine(line)) {
      const td = document.createElement(i === 0 ? "th" : "td");
      td.textContent = cell;
      row.appendChild(td);
    }
  });
  $("csv-result").hidden = false;
}

async function showModel() {
  try {
    const info = await (await fetch("/model")).json();
    $("model").textContent = info.model
      ? `Model: ${info.model.name} version ${info.model.version} (${info.registry.alias})`
      : `Model: none loaded yet (${info.registry.model_name}@${info.registry.alias})`;
  } catch {
    $("model").textContent = "Model: unknown (the service did not answer)";
  }
}

buildForm();
$("predict-form").addEventListener("submit", predictOne);
$("csv-submit").addEventListener("click", predictCsv);
showModel();
