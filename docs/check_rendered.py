"""Check the built documentation: statically (HTML) and as rendered by headless chromium.

Usage::

    ./dev.sh docs --check                        # build, then run this script
    python docs/check_rendered.py docs/_build/html [--no-browser]

Static checks (cheap; tests/test_docs.py runs them in CI on every build):

- every ``<img src>`` of every page points to a file that exists in the build;
- math is written for MathJax and MathJax is served from the build itself
  (``_static/mathjax``), never from a CDN, so formulas render offline;
- no page shows a docutils error box (``system-message``) or a raw, unparsed ``:math:`` role;
- every gallery page embeds at least one figure produced by its example;
- the index, the user guide and the API pages are not empty.

Rendered checks (need Debian's ``chromium``): the build is served on 127.0.0.1 and three pages
(the index, the user-guide theory page, one gallery example) are loaded by headless chromium.
Their DOM after JavaScript must contain MathJax output (``mjx-container``) where the page has
math, and no unrendered ``\\(...\\)``; screenshots are written to ``_screenshots/*.png`` in the
build output and must not be blank. Look at them: they are the proof that math, images and text
render.
"""

import argparse
import contextlib
import functools
import http.server
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from html.parser import HTMLParser

# the three pages the rendered check loads (relative to the build root)
RENDERED_PAGES = {
    "index": "index.html",
    "user_guide_theory": "user_guide/theory.html",
    "gallery_theory_kernel": "auto_examples/plot_theory_kernel.html",
}
MATHJAX_LOCAL = "_static/mathjax/tex-chtml.js"


class _PageParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images = []
        self.scripts = []
        self.math_spans = 0
        self.system_messages = 0
        self.gallery_images = 0
        self.text = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if tag == "img" and attrs.get("src"):
            self.images.append(attrs["src"])
            if any(c.startswith("sphx-glr-") and c.endswith("-img") for c in classes):
                self.gallery_images += 1
        if tag == "script":
            self._skip += 1
            if attrs.get("src"):
                self.scripts.append(attrs["src"])
        if tag == "style":
            self._skip += 1
        if "math" in classes:
            self.math_spans += 1
        if "system-message" in classes:
            self.system_messages += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


def _parse(path):
    parser = _PageParser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.text = " ".join(" ".join(parser.text).split())
    return parser


def _main_text(html_path):
    """Visible text of the article body (the theme's navigation excluded)."""
    html = html_path.read_text(encoding="utf-8")
    match = re.search(r'<article[^>]*bd-article[^>]*>(.*?)</article>', html, re.S)
    body = match.group(1) if match else html
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", body).split())


def static_checks(root):
    """Return a list of problems found in the HTML under ``root`` (empty when all is well)."""
    root = pathlib.Path(root)
    problems = []
    pages = sorted(p for p in root.rglob("*.html") if "_static" not in p.parts
                   and "_sources" not in p.parts and "_screenshots" not in p.parts)
    if not pages:
        return [f"no HTML pages under {root}"]
    if not (root / MATHJAX_LOCAL).is_file():
        problems.append(f"{MATHJAX_LOCAL} is missing: formulas would not render offline")
    for page in pages:
        rel = page.relative_to(root).as_posix()
        parsed = _parse(page)
        for src in parsed.images:
            if re.match(r"^(https?:)?//", src) or src.startswith("data:"):
                if not src.startswith("data:"):
                    problems.append(f"{rel}: remote image {src}")
                continue
            target = (page.parent / src.split("#")[0].split("?")[0]).resolve()
            if not target.is_file():
                problems.append(f"{rel}: image {src} does not exist")
        for src in parsed.scripts:
            if "mathjax" in src.lower() and re.match(r"^(https?:)?//", src):
                problems.append(f"{rel}: MathJax loaded from the network ({src})")
        if parsed.math_spans and not any(MATHJAX_LOCAL.split("/", 1)[1] in s
                                         for s in parsed.scripts):
            problems.append(f"{rel}: has math but does not load the bundled MathJax")
        if parsed.system_messages:
            problems.append(f"{rel}: {parsed.system_messages} docutils error box(es)")
        if re.search(r":math:`", parsed.text):
            problems.append(f"{rel}: unparsed :math: role in the text")
        if rel.startswith("auto_examples/plot_") and parsed.gallery_images == 0:
            problems.append(f"{rel}: gallery page without a figure")
    for rel, min_words in (("index.html", 60), ("user_guide/theory.html", 400),
                           ("api.html", 30)):
        path = root / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif len(_main_text(path).split()) < min_words:
            problems.append(f"{rel}: fewer than {min_words} words of content")
    return problems


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@contextlib.contextmanager
def _serve(root):
    """Serve ``root`` on 127.0.0.1 (a random free port) for the duration of the block."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _chromium(chromium, profile, *args, timeout=120):
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--no-first-run", "--disable-extensions", "--disable-background-networking",
           f"--user-data-dir={profile}", "--virtual-time-budget=15000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def _png_is_blank(path):
    import matplotlib.image as mpimg

    img = mpimg.imread(str(path))
    return img.ndim < 2 or float(img[..., :3].std()) < 0.02


def rendered_checks(root, *, screenshots=True, pages=None):
    """Load pages in headless chromium; return (problems, screenshot paths)."""
    root = pathlib.Path(root)
    chromium = find_chromium()
    if chromium is None:
        return ["chromium not found (apt-get install chromium)"], []
    pages = RENDERED_PAGES if pages is None else pages
    problems, shots = [], []
    out_dir = root / "_screenshots"
    if screenshots:
        out_dir.mkdir(exist_ok=True)
    with _serve(root) as base, tempfile.TemporaryDirectory() as profile:
        for name, rel in pages.items():
            url = f"{base}/{rel}"
            static = _parse(root / rel)
            dom = _chromium(chromium, profile, "--dump-dom", url)
            if dom.returncode != 0 or "<body" not in dom.stdout:
                problems.append(f"{rel}: chromium could not load it ({dom.stderr[-300:]})")
                continue
            rendered_math = dom.stdout.count("<mjx-container")
            if static.math_spans and rendered_math == 0:
                problems.append(f"{rel}: {static.math_spans} formulas, none rendered by MathJax")
            if "<mjx-merror" in dom.stdout:
                problems.append(f"{rel}: MathJax reported a TeX error")
            leftover = re.findall(r'<span class="math[^"]*">\s*\\\(', dom.stdout)
            if leftover:
                problems.append(f"{rel}: {len(leftover)} formulas left as raw TeX")
            if screenshots:
                png = out_dir / f"{name}.png"
                shot = _chromium(chromium, profile, f"--screenshot={png}",
                                 "--window-size=1280,2200", url)
                if shot.returncode != 0 or not png.is_file():
                    problems.append(f"{rel}: screenshot failed ({shot.stderr[-300:]})")
                    continue
                if _png_is_blank(png):
                    problems.append(f"{rel}: screenshot {png.name} is blank")
                shots.append(png)
            print(f"{rel}: {static.math_spans} formulas in the HTML, {rendered_math} rendered "
                  f"by MathJax, {len(static.images)} images")
    return problems, shots


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build", nargs="?", default="docs/_build/html")
    parser.add_argument("--no-browser", action="store_true",
                        help="static HTML checks only (no chromium)")
    args = parser.parse_args(argv)
    problems = static_checks(args.build)
    shots = []
    if not args.no_browser:
        more, shots = rendered_checks(args.build)
        problems += more
    for path in shots:
        print(f"screenshot: {path}")
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    print("check_rendered: " + ("OK" if not problems else f"{len(problems)} problem(s)"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
