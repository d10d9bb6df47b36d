"""Debian's chromium and the headless flags that work on these machines (see
ENGINEERING-NOTES "Browsers"); shared by the web tests, the browser-engine tests and
bench/browser_engine.py."""

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
