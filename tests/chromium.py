"""Debian's chromium and the headless flags that work on these machines (see
ENGINEERING-NOTES "Browsers"); shared by the web tests, the browser-engine tests and
bench/browser_engine.py.

The last two give pages a WebGPU adapter without a GPU: SwiftShader, Chromium's software
adapter (vendor google, architecture swiftshader, a fallback adapter). It lacks shader-f16,
which llama.cpp's WebGPU backend requires, so wllama still runs on WebAssembly there
(docs/browser-engine.md "WebGPU")."""

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-unsafe-webgpu",
    "--use-webgpu-adapter=swiftshader",
]
