// The emulator's chat page (GET /): chat "as a WhatsApp user" with the bot.
#pragma once

namespace formiga::whatsapp {

inline constexpr const char* kEmulatorPage = R"html(<!doctype html>
<html lang="pt-BR"><head><meta charset="utf-8"><title>formiga — WhatsApp emulator</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:0;background:#efeae2}
header{background:#075e54;color:#fff;padding:10px 16px;display:flex;gap:12px;align-items:center}
header input{width:11em}
#log{padding:12px;height:calc(100vh - 130px);overflow-y:auto}
.m{max-width:70%;margin:6px 0;padding:7px 10px;border-radius:8px;white-space:pre-wrap;box-shadow:0 1px 1px #0002}
.u{background:#d9fdd3;margin-left:auto}.b{background:#fff}.s{font-size:11px;color:#667}
form{display:flex;gap:8px;padding:8px 12px;background:#f0f2f5}
form input{flex:1;padding:9px;border-radius:8px;border:1px solid #ccc}
</style></head><body>
<header><b>formiga</b> WhatsApp emulator — you are
<input id="from" value="5511999990001" title="your wa_id (phone number)">
<input id="name" value="Visitante" title="your profile name"></header>
<div id="log"></div>
<form id="f"><input id="t" autocomplete="off" placeholder="Mensagem (/help, /reiniciar)">
<button>Enviar</button><button type="button" id="img" title="send an image">📷</button></form>
<script>
let since = 0;
const log = document.getElementById('log');
function add(cls, text, sub) {
  const d = document.createElement('div'); d.className = 'm ' + cls; d.textContent = text;
  if (sub) { const s = document.createElement('div'); s.className = 's'; s.textContent = sub; d.appendChild(s); }
  log.appendChild(d); log.scrollTop = log.scrollHeight;
}
async function send(payload) {
  const r = await fetch('/emulator/send', {method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify(Object.assign({from: from.value, name: name.value}, payload))});
  const j = await r.json();
  if (!r.ok) add('b', 'webhook error: ' + (j.error || r.status));
}
document.getElementById('f').onsubmit = async (e) => {
  e.preventDefault(); const t = document.getElementById('t');
  if (!t.value) return; add('u', t.value); const text = t.value; t.value = ''; await send({text});
};
document.getElementById('img').onclick = async () => { add('u', '[image]'); await send({type: 'image'}); };
async function poll() {
  try {
    const r = await fetch('/emulator/messages?since=' + since); const j = await r.json();
    for (const m of j.messages) {
      since = Math.max(since, m.seq);
      if (m.to === from.value) add('b', m.body, m.context ? 'reply to ' + m.context.slice(0, 24) + '…' : '');
    }
  } catch (e) {}
  setTimeout(poll, 700);
}
poll();
</script></body></html>
)html";

}  // namespace formiga::whatsapp
