#!/usr/bin/env bash
# Vendor the viewer's JavaScript into api/viewer/static/vendor/ (committed: it is the build
# output, so the API serves it with no CDN and no internet at run time). Run again only to
# change a version: bump the pin AND its integrity (`npm view PKG@VERSION dist.integrity`).
#
# maplibre-gl: the CSP build (maplibre-gl-csp.js + its worker file), because the API's HTML
# pages forbid blob: workers, which the default bundle creates; uplot: the IIFE build.
set -euo pipefail
cd "$(dirname "$0")/.."

MAPLIBRE_VERSION=5.24.1
MAPLIBRE_INTEGRITY="sha512-HyiYBwtsbk3L1n1EPLJHWqdoyMiF80n7tEYXFZyu2m1TjvaNx6KMLiFeDdmszt1/mq2zvsR1TJuX/NMu5BonXQ=="
UPLOT_VERSION=1.6.32
UPLOT_INTEGRITY="sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw=="

dest=api/viewer/static/vendor
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# fetch PKG VERSION INTEGRITY: the package tarball, checked against the pinned integrity
fetch() {
  local tarball
  tarball="$(cd "$work" && npm pack --silent "$1@$2")"
  local actual
  actual="sha512-$(openssl dgst -sha512 -binary "$work/$tarball" | base64 -w0)"
  if [ "$actual" != "$3" ]; then
    echo "integrity mismatch for $1@$2: got $actual" >&2
    exit 1
  fi
  mkdir -p "$work/$1"
  tar -xzf "$work/$tarball" -C "$work/$1"
}

fetch maplibre-gl "$MAPLIBRE_VERSION" "$MAPLIBRE_INTEGRITY"
fetch uplot "$UPLOT_VERSION" "$UPLOT_INTEGRITY"

rm -rf "$dest"
mkdir -p "$dest"
m="$work/maplibre-gl/package"
cp "$m/dist/maplibre-gl-csp.js" "$m/dist/maplibre-gl-csp-worker.js" "$m/dist/maplibre-gl.css" "$dest/"
cp "$m/LICENSE.txt" "$dest/maplibre-gl.LICENSE.txt"
u="$work/uplot/package"
cp "$u/dist/uPlot.iife.min.js" "$u/dist/uPlot.min.css" "$dest/"
cp "$u/LICENSE" "$dest/uPlot.LICENSE.txt"
# the bundles end with a sourceMappingURL to files not shipped: drop it (no 404s in devtools)
sed -i -e '/^\/\/# sourceMappingURL=/d' "$dest"/*.js
cat > "$dest/VERSIONS.txt" <<VERSIONS
maplibre-gl $MAPLIBRE_VERSION (npm, dist/maplibre-gl-csp.js, dist/maplibre-gl-csp-worker.js, dist/maplibre-gl.css; BSD-3-Clause, maplibre-gl.LICENSE.txt)
uplot $UPLOT_VERSION (npm, dist/uPlot.iife.min.js, dist/uPlot.min.css; MIT, uPlot.LICENSE.txt)
Written by scripts/vendor_js.sh.
VERSIONS
ls -l "$dest"
