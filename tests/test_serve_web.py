"""The web chat page of `formiga serve` in headless Chromium (Debian's chromium + chromedriver, driven by
selenium): type a message, see the streamed answer, stop a long one. Screenshot: build/test-artifacts/."""
import os
import shutil
from pathlib import Path

import pytest

from serve_util import Server

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "build" / "test-artifacts"


@pytest.fixture(scope="module")
def browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        msg = "chromium/chromedriver missing (Debian packages chromium, chromium-driver: run scripts/setup)"
        if os.environ.get("FORMIGA_REQUIRE_MODELS") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-proxy-server",
              "--window-size=1000,800", "--lang=pt-BR"]:
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service(executable_path=driver), options=opts)
    yield d
    d.quit()


@pytest.fixture(scope="module")
def server(formiga_bin, smollm2):
    s = Server(formiga_bin, smollm2, "-t", "2", "--kv-cache-mib", "64")
    yield s
    assert s.stop() == 0


def test_web_chat_streams_an_answer_and_stops(browser, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server.url)
    wait = WebDriverWait(browser, 120, poll_frequency=0.02)
    wait.until(lambda d: server.model_id in d.find_element(By.ID, "model-info").text)
    browser.execute_script("document.getElementById('temperature').value = '0';"
                           "document.getElementById('max-tokens').value = '40';")
    box = browser.find_element(By.ID, "input")
    box.send_keys("Olá! Escreva uma frase sobre formigas.")
    box.send_keys(Keys.ENTER)
    # Streaming: the bubble shows text while it is still marked as streaming.
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".msg.assistant.streaming p"))
    done = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".msg.assistant[data-done='1']"))
    assert "Olá! Escreva uma frase sobre formigas." in browser.find_element(By.CSS_SELECTOR, ".msg.user").text
    text = done.text
    assert "finish:" in text and "error" not in text and len(text.split("finish:")[0].strip()) > 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "serve-web-chat.png"))

    # Second turn (multi-turn history), stopped mid-stream.
    browser.execute_script("document.getElementById('max-tokens').value = '900';")
    box.send_keys("Agora conte até cem, um número por linha.")
    box.send_keys(Keys.ENTER)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".msg.assistant.streaming p")) > 0)
    browser.find_element(By.ID, "stop").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".msg.assistant[data-done='1']")) == 2)
    assert "finish: stopped" in browser.find_elements(By.CSS_SELECTOR, ".msg.assistant")[1].text
    assert len(browser.find_elements(By.CSS_SELECTOR, ".msg.user")) == 2
