#!/usr/bin/env bash
# Vendor the web assets the built book loads at *view* time, so the site works without internet:
#   MathJax 3 (math), require.js and @jupyter-widgets/html-manager's embed-amd.js (ipywidgets).
# Without them the pages fetch these from cdn.jsdelivr.net / cdnjs at view time: no internet means
# raw TeX and blank widgets.
#
# Only the npm registry is used (`npm pack`, which checks each tarball's registry integrity hash).
# The files land in book/_vendor/offline/ (git-ignored; served as _static/offline/). Not under
# book/_static/: Jupyter Book 1 adds every .js/.css found there to every page. book/_config.yml
# points html_static_path, mathjax_path and nb_ipywidgets_js at this folder.
#
# Usage: bash scripts/vendor_web_assets.sh [--force]     (idempotent: skips when the versions match)
set -euo pipefail

# Pinned versions. html-manager 1.0.x renders the ipywidgets 8 state the notebooks save.
MATHJAX=mathjax@3.2.2
REQUIREJS=requirejs@2.3.8
HTML_MANAGER=@jupyter-widgets/html-manager@1.0.15
STAMP="$MATHJAX $REQUIREJS $HTML_MANAGER"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/book/_vendor/offline"

if [[ "${1:-}" != "--force" && -f "$DEST/VERSIONS" && "$(cat "$DEST/VERSIONS")" == "$STAMP" ]]; then
    echo "vendored web assets up to date: $DEST ($STAMP)"
    exit 0
fi
command -v npm >/dev/null || { echo "error: npm is needed to vendor the book's web assets (apt-get install -y npm)" >&2; exit 1; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
npm pack --silent "$MATHJAX" "$REQUIREJS" "$HTML_MANAGER" >/dev/null
for tgz in *.tgz; do mkdir -p "x/${tgz%.tgz}" && tar xzf "$tgz" -C "x/${tgz%.tgz}"; done

rm -rf "$DEST.tmp" && mkdir -p "$DEST.tmp/mathjax" "$DEST.tmp/widgets"
# MathJax: the combined TeX+MathML → CommonHTML component, plus what it loads on demand
# (TeX extensions, CHTML fonts, the menu, accessibility and speech-rule components). ~9 MB of 24.
MJ="x/mathjax-${MATHJAX#mathjax@}/package/es5"
cp "$MJ/tex-mml-chtml.js" "$DEST.tmp/mathjax/"
cp -r "$MJ/input" "$MJ/ui" "$MJ/a11y" "$MJ/sre" "$DEST.tmp/mathjax/"
mkdir -p "$DEST.tmp/mathjax/output" && cp -r "$MJ/output/chtml" "$MJ/output/chtml.js" "$DEST.tmp/mathjax/output/"
cp "$MJ/../LICENSE" "$DEST.tmp/mathjax/LICENSE"
# require.js
cp "x/requirejs-${REQUIREJS#requirejs@}/package/require.js" "$DEST.tmp/require.js"
# embed-amd.js and the icon fonts it references by relative URL (webpack emits them beside it)
HM="x/jupyter-widgets-html-manager-${HTML_MANAGER##*@}/package/dist"
cp "$HM/embed-amd.js" "$DEST.tmp/widgets/"
cp "$HM"/*.woff2 "$HM"/*.woff "$HM"/*.ttf "$HM"/*.eot "$HM"/*.svg "$DEST.tmp/widgets/"

echo "$STAMP" > "$DEST.tmp/VERSIONS"
rm -rf "$DEST" && mv "$DEST.tmp" "$DEST"
echo "vendored $STAMP into $DEST ($(du -sh "$DEST" | cut -f1))"
