// formiga's web chat: multi-turn, streamed from /v1/chat/completions (SSE),
// markdown rendered safely (text is escaped before any markup is added).
// No build step and no third-party code.
"use strict";

const $ = (id) => document.getElementById(id);
const history = [];  // {role, content} of this conversation
let controller = null;

function escapeHtml(s) {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

// A small markdown subset: fenced code, inline code, bold, italics, links,
// headings, lists, paragraphs. Input is escaped first, so the model cannot inject HTML.
function renderMarkdown(src) {
  const blocks = [];
  src = src.replace(/```([\w-]*)\n?([\s\S]*?)(```|$)/g, (_, lang, code) => {
    blocks.push(`<pre><code class="lang-${escapeHtml(lang)}">${escapeHtml(code)}</code></pre>`);
    return `\u0000${blocks.length - 1}\u0000`;
  });
  const inline = (t) => escapeHtml(t)
    .replace(/`([^`]+)`/g, "<code>$1</code>")
    .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
    .replace(/(^|[^*])\*([^*\s][^*]*)\*/g, "$1<em>$2</em>")
    .replace(/\[([^\]]+)\]\((https?:\/\/[^\s)]+)\)/g, '<a href="$2" target="_blank" rel="noopener noreferrer">$1</a>');
  const out = [];
  let list = null;
  const closeList = () => { if (list) { out.push(`</${list}>`); list = null; } };
  for (const line of src.split("\n")) {
    const code = line.match(/^\u0000(\d+)\u0000$/);
    const h = line.match(/^(#{1,6})\s+(.*)$/);
    const ul = line.match(/^\s*[-*+]\s+(.*)$/);
    const ol = line.match(/^\s*\d+[.)]\s+(.*)$/);
    if (code) { closeList(); out.push(blocks[Number(code[1])]); }
    else if (h) { closeList(); out.push(`<h${h[1].length + 2}>${inline(h[2])}</h${h[1].length + 2}>`); }
    else if (ul || ol) {
      const tag = ul ? "ul" : "ol";
      if (list !== tag) { closeList(); out.push(`<${tag}>`); list = tag; }
      out.push(`<li>${inline((ul || ol)[1])}</li>`);
    } else if (line.trim() === "") { closeList(); }
    else { closeList(); out.push(`<p>${inline(line)}</p>`); }
  }
  closeList();
  return out.join("").replace(/\u0000(\d+)\u0000/g, (_, i) => blocks[Number(i)]);
}

function addMessage(role, text) {
  const div = document.createElement("div");
  div.className = `msg ${role}`;
  if (role === "assistant") div.innerHTML = renderMarkdown(text); else div.textContent = text;
  $("messages").appendChild(div);
  div.scrollIntoView({ block: "end" });
  return div;
}

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h["Authorization"] = `Bearer ${key}`;
  return h;
}

async function loadModelInfo() {
  try {
    const r = await fetch("/info", { headers: headers() });
    const info = await r.json();
    $("model-info").textContent = `${info.model_id} · ${info.architecture || ""} · context ${info.max_total_tokens} · ${info.model_device_type || ""}`;
  } catch (e) {
    $("model-info").textContent = "model info unavailable";
  }
}

function setBusy(busy) {
  $("send").hidden = busy;
  $("stop").hidden = !busy;
  $("input").disabled = busy;
}

async function send(text) {
  history.push({ role: "user", content: text });
  addMessage("user", text);
  const bubble = addMessage("assistant", "");
  bubble.classList.add("streaming");
  const messages = [];
  const system = $("system").value.trim();
  if (system) messages.push({ role: "system", content: system });
  messages.push(...history);
  controller = new AbortController();
  setBusy(true);
  let answer = "", finish = "", usage = null;
  const started = performance.now();
  try {
    const r = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers(), signal: controller.signal,
      body: JSON.stringify({ messages, stream: true, stream_options: { include_usage: true },
                             temperature: Number($("temperature").value), max_tokens: Number($("max-tokens").value) }),
    });
    if (!r.ok) {
      const body = await r.json().catch(() => ({}));
      throw new Error((body.error && body.error.message) || `HTTP ${r.status}`);
    }
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const event = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data:")) continue;
          const data = line.slice(5).trim();
          if (data === "[DONE]") continue;
          const chunk = JSON.parse(data);
          if (chunk.error) throw new Error(chunk.error.message);
          if (chunk.usage) usage = chunk.usage;
          for (const c of chunk.choices || []) {
            if (c.delta && c.delta.content) answer += c.delta.content;
            if (c.finish_reason) finish = c.finish_reason;
          }
          bubble.innerHTML = renderMarkdown(answer);
          bubble.scrollIntoView({ block: "end" });
        }
      }
    }
  } catch (e) {
    if (e.name === "AbortError") finish = "stopped";
    else { bubble.classList.add("error"); answer += (answer ? "\n\n" : "") + `error: ${e.message}`; }
  } finally {
    controller = null;
    setBusy(false);
    bubble.classList.remove("streaming");
    bubble.innerHTML = renderMarkdown(answer);
    const secs = (performance.now() - started) / 1000;
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = [finish && `finish: ${finish}`, usage && `${usage.completion_tokens} tokens`,
                        `${secs.toFixed(1)} s`].filter(Boolean).join(" · ");
    bubble.appendChild(meta);
    bubble.dataset.done = "1";
    if (answer && !bubble.classList.contains("error")) history.push({ role: "assistant", content: answer });
    $("input").focus();
  }
}

$("composer").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("input").value.trim();
  if (!text || controller) return;
  $("input").value = "";
  send(text);
});
$("input").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("composer").requestSubmit(); }
});
$("stop").addEventListener("click", () => { if (controller) controller.abort(); });
$("clear").addEventListener("click", () => { history.length = 0; $("messages").innerHTML = ""; });
$("api-key").value = localStorage.getItem("formiga-api-key") || "";
$("api-key").addEventListener("change", () => localStorage.setItem("formiga-api-key", $("api-key").value));
loadModelInfo();
