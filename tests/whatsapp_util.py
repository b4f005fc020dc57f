"""Helpers for the WhatsApp channel's end-to-end tests: the stand-in Graph API
(`formiga whatsapp emulate`), the bot (`formiga whatsapp serve`), signed
webhooks exactly as Meta sends them, and reading the channel's SQLite file."""
import hashlib
import hmac
import json
import os
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"
PHONE_ID = "106540352242922"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, headers=None, timeout=10):
    """(status, body text); status 0 when nothing answered."""
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError):
        return 0, ""


def sign(raw: bytes, secret=APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def text_notification(frm, wamid, text, name="Usuário"):
    """Meta's example text-message notification with our values."""
    return message_notification(frm, {"from": frm, "id": wamid, "timestamp": str(int(time.time())),
                                      "type": "text", "text": {"body": text}}, name)


def message_notification(frm, message, name="Usuário"):
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398",
                       "changes": [{"value": {
                           "messaging_product": "whatsapp",
                           "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_ID},
                           "contacts": [{"profile": {"name": name}, "wa_id": frm}],
                           "messages": [message]},
                           "field": "messages"}]}]}


class Bot:
    """`formiga whatsapp serve` with its emulator; restartable (crash tests)."""

    def __init__(self, formiga_bin, model, tmp: Path, config: dict, token="tok-1", insecure=False,
                 via_serve=False):
        self.bin = str(formiga_bin)
        self.model = str(model)
        self.tmp = tmp
        self.port = free_port()
        self.emu_port = free_port()
        self.db = tmp / "wa.db"
        self.token_file = tmp / "token"
        self.token_file.write_text(token + "\n")
        cfg = {"max_reply_tokens": 12, "temperature": 0, "seed": 1, "quiet_window_s": 0.05,
               "retry_base_s": 0.05, "paused_probe_s": 0.2, "typing_indicator": True}
        cfg.update(config)
        self.config_path = tmp / "whatsapp.json"
        self.config_path.write_text(json.dumps({"whatsapp": cfg}))
        self.env = dict(os.environ,
                        FORMIGA_WHATSAPP_APP_SECRET="" if insecure else APP_SECRET,
                        FORMIGA_WHATSAPP_VERIFY_TOKEN=VERIFY_TOKEN,
                        FORMIGA_WHATSAPP_ACCESS_TOKEN_FILE=str(self.token_file),
                        FORMIGA_WHATSAPP_PHONE_NUMBER_ID=PHONE_ID,
                        FORMIGA_WHATSAPP_GRAPH_URL=f"http://127.0.0.1:{self.emu_port}",
                        FORMIGA_WHATSAPP_DB=str(self.db))
        self.proc = None
        self.emu = None
        self.runs = 0
        self.via_serve = via_serve  # `formiga serve --whatsapp` instead of `formiga whatsapp serve`

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def emu_url(self):
        return f"http://127.0.0.1:{self.emu_port}"

    def start_emulator(self):
        self.emu = subprocess.Popen([self.bin, "whatsapp", "emulate", "--port", str(self.emu_port),
                                     "--webhook", f"{self.url}/webhook"], env=self.env,
                                    stderr=open(self.tmp / "emulator.log", "ab"))
        wait_until(lambda: http("GET", self.emu_url + "/emulator/state")[0] == 200, 20, "emulator up")

    def start(self, extra=()):
        self.runs += 1
        log = open(self.tmp / f"bot.{self.runs}.log", "wb")
        if self.via_serve:
            cmd = [self.bin, "serve", "--whatsapp", "--whatsapp-config", str(self.config_path)]
        else:
            cmd = [self.bin, "whatsapp", "serve", "--config", str(self.config_path)]
        cmd += ["-m", self.model, "-t", "2", "--ctx", "1024", "--port", str(self.port), *extra]
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=log)
        wait_until(lambda: self.proc.poll() is not None or http("GET", self.url + "/health")[0] in (200, 503),
                   60, "bot up")
        assert self.proc.poll() is None, self.log()

    def log(self):
        return (self.tmp / f"bot.{self.runs}.log").read_text(errors="replace")

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        for p in (self.proc, self.emu):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

    def post(self, body: dict, signature=True, timeout=10, retry=True):
        """Status of the webhook POST; like Meta, delivers again when nothing answered."""
        raw = json.dumps(body, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        if signature:
            headers["X-Hub-Signature-256"] = sign(raw)
        for _ in range(20 if retry else 1):
            status = http("POST", self.url + "/webhook", raw, headers, timeout=timeout)[0]
            if status != 0:
                break
            time.sleep(0.05)
        return status

    def health(self):
        status, body = http("GET", self.url + "/health")
        return json.loads(body)["whatsapp"] if body else {}

    def sent(self):
        return json.loads(http("GET", self.emu_url + "/emulator/messages")[1])["messages"]

    def calls(self):
        return json.loads(http("GET", self.emu_url + "/emulator/calls")[1])["calls"]

    def sent_to(self, wa_id):
        return json.loads(http("GET", f"{self.emu_url}/emulator/messages?to={wa_id}")[1])["messages"]

    def queue_errors(self, codes):
        assert http("POST", self.emu_url + "/emulator/errors", json.dumps({"codes": codes}))[0] == 200

    def set_emulator_token(self, token):
        assert http("POST", self.emu_url + "/emulator/token", json.dumps({"token": token}))[0] == 200

    def wait_idle(self, timeout=60):
        def idle():
            h = self.health()
            return h.get("inbound_pending") == 0 and h.get("outbox_pending") == 0
        wait_until(idle, timeout, "channel idle")

    def db_rows(self, sql, *args):
        con = sqlite3.connect(self.db, timeout=10)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()


def wait_until(pred, timeout, what, interval=0.05):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
