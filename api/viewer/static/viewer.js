/* cubestac viewer: the catalogue's cubes on a map, with a time-series chart.
 *
 * Everything comes from the API that serves this page (DESIGN.md "Serving what cubes
 * hold"): cube items from POST /search (items with `cube:variables`), the pickers from
 * their `cube:` fields, the layer from their `xyz` / `tilejson` links (web-map-links), the
 * chart from `.../position` (OGC API - EDR, CoverageJSON). State the browser test reads
 * is kept on `window.cubestacViewer`.
 */
(function () {
  "use strict";

  var SCRIPT_URL = document.currentScript.src;
  // the API root: this page is `<root>viewer`, whatever prefix a proxy adds
  var API = new URL(location.pathname.replace(/viewer\/?$/, ""), location.origin).href;
  var MAX_SEARCH_PAGES = 10;
  var MAX_TIME_STEPS = 5000;
  var CUBE_FILTER = {
    op: "not",
    args: [{ op: "isNull", args: [{ property: "cube:variables" }] }],
  };
  // colours of classes the item gives none (tab10's, a qualitative palette)
  var CLASS_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  var EMPTY_STYLE = {
    version: 8,
    sources: {},
    layers: [{ id: "background", type: "background", paint: { "background-color": "#e9edf1" } }],
  };

  var viewer = (window.cubestacViewer = {
    status: "loading", // "ready" once the pickers are filled, "error" if that failed
    lastSeries: null, // the chart's data: {variable, lon, lat, times, values}
    lastError: null, // the last message shown as an error
    tileErrors: 0,
    tileUrl: null, // the raster source's URL template
    map: null,
  });

  var state = {
    publicRoot: null, // the API's own root in its links (CUBESTAC_PUBLIC_URL)
    items: {}, // collection id -> cube items
    titles: {}, // collection id -> title
    colormaps: {}, // name -> ["#rrggbb", ...]
    item: null,
    rescales: {}, // variable -> [min, max] chosen or found
  };
  var chart = null;

  function $(id) {
    return document.getElementById(id);
  }

  // -- messages ----------------------------------------------------------------------------

  function showMessage(text, isError) {
    var box = $("message");
    box.textContent = text || "";
    box.className = isError ? "error" : "";
    if (isError) viewer.lastError = text;
  }

  function ApiError(status, message) {
    this.status = status;
    this.message = message;
  }
  ApiError.prototype = Object.create(Error.prototype);

  // -- HTTP --------------------------------------------------------------------------------

  /* An href from the API's documents, made relative to this page's API root: links are
   * written from CUBESTAC_PUBLIC_URL, which may be another host than the one in the URL bar
   * (and the page's CSP only lets it fetch from its own origin). */
  function local(href) {
    if (state.publicRoot && href.indexOf(state.publicRoot) === 0) {
      return API + href.slice(state.publicRoot.length);
    }
    return new URL(href, API).href;
  }

  function fetchJSON(url, init) {
    return fetch(url, init).then(function (response) {
      return response.text().then(function (text) {
        var body = null;
        try {
          body = text ? JSON.parse(text) : null;
        } catch (e) {
          body = null;
        }
        if (!response.ok) {
          var why = (body && (body.description || body.detail)) || response.statusText;
          throw new ApiError(response.status, why);
        }
        return body;
      });
    });
  }

  function linkOf(doc, rel) {
    return (doc.links || []).filter(function (l) {
      return l.rel === rel;
    });
  }

  /* All cube items: POST /search with a CQL2 filter, following `next` (POST) links. */
  function searchCubes() {
    var found = [];
    function page(url, body, left) {
      var init = {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/geo+json" },
        body: JSON.stringify(body),
      };
      return fetchJSON(url, init).then(function (result) {
        found = found.concat(result.features || []);
        var next = linkOf(result, "next")[0];
        if (!next || left <= 1) return found;
        var nextBody = next.merge ? Object.assign({}, body, next.body) : next.body || body;
        return page(local(next.href), nextBody, left - 1);
      });
    }
    var first = { limit: 100, "filter-lang": "cql2-json", filter: CUBE_FILTER };
    return page(API + "search", first, MAX_SEARCH_PAGES);
  }

  // -- the cube's metadata -----------------------------------------------------------------

  function variablesOf(item) {
    return item.properties["cube:variables"] || {};
  }

  /* Classes of a categorical variable (STAC classification extension, on the variable or
   * on the zarr asset), or null. */
  function classesOf(item, name) {
    var variable = variablesOf(item)[name] || {};
    if (variable["classification:classes"]) return variable["classification:classes"];
    var asset = (item.assets || {}).zarr || {};
    var bands = asset["classification:classes"] ? [asset] : asset.bands || [];
    for (var i = 0; i < bands.length; i++) {
      var classes = bands[i]["classification:classes"];
      if (classes && (!bands[i].name || bands[i].name === name)) return classes;
    }
    return null;
  }

  /* Categorical: has classes, or the zarr asset keeps its integers as stored. */
  function isCategorical(item, name) {
    if (classesOf(item, name)) return true;
    var asset = (item.assets || {}).zarr || {};
    var masking = (asset["xarray:open_kwargs"] || {}).mask_and_scale;
    return typeof masking === "object" && masking !== null && masking[name] === false;
  }

  function hasTime(item, name) {
    return (variablesOf(item)[name].dimensions || []).indexOf("time") >= 0;
  }

  /* An ISO 8601 duration (P1Y, P3M, P1W, P10D, PT6H ...) as calendar parts, or null. */
  function parseDuration(text) {
    var m = /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/.exec(
      text || ""
    );
    if (!m || text === "P" || text === "PT") return null;
    var n = m.slice(1).map(function (v) {
      return v ? parseInt(v, 10) : 0;
    });
    return { months: n[0] * 12 + n[1], ms: ((n[2] * 7 + n[3]) * 24 * 3600 + n[4] * 3600 + n[5] * 60 + n[6]) * 1000 };
  }

  function addDuration(date, step) {
    var next = new Date(date.getTime());
    if (step.months) next.setUTCMonth(next.getUTCMonth() + step.months);
    return new Date(next.getTime() + step.ms);
  }

  /* The time axis: its `values`, or `extent` walked by `step`. */
  function timeSteps(item) {
    var time = (item.properties["cube:dimensions"] || {}).time;
    if (!time) return [];
    if (time.values) return time.values.slice();
    var step = parseDuration(time.step);
    if (!step || !time.extent || !time.extent[0]) return time.extent ? [time.extent[0]] : [];
    var end = new Date(time.extent[1] || time.extent[0]);
    var steps = [];
    for (var t = new Date(time.extent[0]); t <= end && steps.length < MAX_TIME_STEPS; ) {
      steps.push(t.toISOString().replace(".000Z", "Z"));
      t = addDuration(t, step);
    }
    return steps;
  }

  // -- pickers -----------------------------------------------------------------------------

  function fill(select, options, chosen) {
    select.textContent = "";
    options.forEach(function (option) {
      var element = document.createElement("option");
      element.value = option[0];
      element.textContent = option[1];
      select.appendChild(element);
    });
    var values = options.map(function (o) {
      return o[0];
    });
    if (chosen !== undefined && chosen !== null && values.indexOf(chosen) >= 0) select.value = chosen;
    select.disabled = options.length === 0;
  }

  function params() {
    return new URLSearchParams(location.search);
  }

  function remember() {
    var query = new URLSearchParams();
    ["collection", "item", "variable", "time", "colormap"].forEach(function (key) {
      if ($(key).value) query.set(key, $(key).value);
    });
    var range = rescale();
    if (range) query.set("rescale", range.join(","));
    history.replaceState(null, "", "?" + query.toString());
  }

  function chooseCollection(collectionId, wanted) {
    var items = state.items[collectionId] || [];
    fill(
      $("item"),
      items.map(function (item) {
        return [item.id, item.properties.title || item.id];
      }),
      wanted.item
    );
    chooseItem(wanted);
  }

  function chooseItem(wanted) {
    var items = state.items[$("collection").value] || [];
    var item = items.filter(function (i) {
      return i.id === $("item").value;
    })[0];
    state.item = item || null;
    if (!item) return;
    var names = mapVariables(item);
    fill(
      $("variable"),
      names.map(function (name) {
        var description = variablesOf(item)[name].description;
        return [name, description && description !== name ? name + " - " + description : name];
      }),
      wanted.variable
    );
    var steps = timeSteps(item);
    fill(
      $("time"),
      steps.map(function (t) {
        return [t, t.replace(/T00:00:00(\.0+)?Z$/, "")];
      }),
      wanted.time || steps[steps.length - 1] // the latest, as the tiles' own default
    );
    showFootprint(item);
    chooseVariable(wanted);
  }

  function chooseVariable(wanted) {
    var item = state.item;
    var name = $("variable").value;
    var categorical = isCategorical(item, name);
    var options = Object.keys(state.colormaps).map(function (c) {
      return [c, c];
    });
    if (categorical) options.unshift(["classes", "classes"]);
    fill($("colormap"), options, (wanted && wanted.colormap) || (categorical ? "classes" : "viridis"));
    $("time").disabled = !hasTime(item, name) || $("time").options.length === 0;
    document.querySelector(".rescale").classList.toggle("hidden", categorical);
    var range = wanted && wanted.rescale ? wanted.rescale.split(",").map(Number) : state.rescales[name];
    range = range && range.length === 2 && range.every(isFinite) ? range : null;
    setRescale(range);
    clearChart();
    if (range || categorical) return update();
    // a continuous variable's first look: its range over the cube at this time (/area),
    // sent with every tile so that the legend's numbers are the ones drawn
    update();
    findRange(item, name).then(function (found) {
      if (!found || state.item !== item || $("variable").value !== name || rescale()) return;
      state.rescales[name] = found;
      setRescale(found);
      update();
    });
  }

  function bboxPolygon(bbox) {
    var w = bbox[0], s = bbox[1], e = bbox[2], n = bbox[3];
    return "POLYGON((" + [[w, s], [e, s], [e, n], [w, n], [w, s]].map(function (p) {
      return p[0] + " " + p[1];
    }).join(",") + "))";
  }

  /* Minimum and maximum of a variable over the item's bbox at the chosen time, rounded
   * outwards to 3 significant digits; null when /area cannot say (too large an area...). */
  function findRange(item, name) {
    if (!item.bbox) return Promise.resolve(null);
    var query = { coords: bboxPolygon(item.bbox), "parameter-name": name };
    if (hasTime(item, name) && $("time").value) query.datetime = $("time").value;
    return fetchJSON(itemUrl(item) + "/area?" + new URLSearchParams(query))
      .then(function (coverage) {
        var ranges = coverage.ranges || {};
        var lows = ((ranges[name + "_min"] || {}).values || []).filter(isNumber);
        var highs = ((ranges[name + "_max"] || {}).values || []).filter(isNumber);
        if (!lows.length || !highs.length) return null;
        var low = round(Math.min.apply(null, lows), Math.floor);
        var high = round(Math.max.apply(null, highs), Math.ceil);
        return low < high ? [low, high] : null;
      })
      .catch(function () {
        return null;
      });
  }

  function round(value, direction) {
    if (value === 0) return 0;
    var scale = Math.pow(10, Math.floor(Math.log10(Math.abs(value))) - 2);
    return Number((direction(value / scale) * scale).toPrecision(12));
  }

  function isNumber(value) {
    return typeof value === "number" && isFinite(value);
  }

  function setRescale(range) {
    $("rescale-min").value = range ? range[0] : "";
    $("rescale-max").value = range ? range[1] : "";
  }

  function rescale() {
    var low = $("rescale-min").value;
    var high = $("rescale-max").value;
    if (low === "" || high === "" || document.querySelector(".rescale.hidden")) return null;
    return [Number(low), Number(high)];
  }

  // -- the map -----------------------------------------------------------------------------

  function createMap() {
    maplibregl.setWorkerUrl(new URL("vendor/maplibre-gl-csp-worker.js", SCRIPT_URL).href);
    var map = new maplibregl.Map({
      container: "map",
      style: EMPTY_STYLE,
      center: [10, 50],
      zoom: 3,
      fadeDuration: 0,
      attributionControl: false,
      // the test reads the drawn pixels back
      canvasContextAttributes: { preserveDrawingBuffer: true },
    });
    map.addControl(new maplibregl.NavigationControl({ showCompass: false }));
    map.addControl(new maplibregl.ScaleControl());
    map.on("click", function (event) {
      requestSeries(event.lngLat.lng, event.lngLat.lat);
    });
    map.on("error", function (event) {
      if (event.sourceId !== "cube") return;
      viewer.tileErrors += 1;
      tileErrorText(event.error).then(function (text) {
        showMessage("The map tiles could not be drawn: " + text, true);
      });
    });
    viewer.map = map;
    return new Promise(function (resolve) {
      map.on("load", function () {
        resolve(map);
      });
    });
  }

  /* The API's own description of a failed tile (maplibre's AJAXError keeps the body). */
  function tileErrorText(error) {
    var fallback = (error && error.message) || "unknown error";
    if (!error || !error.body || typeof error.body.text !== "function") return Promise.resolve(fallback);
    return error.body
      .text()
      .then(function (text) {
        var body = JSON.parse(text);
        return body.description || fallback;
      })
      .catch(function () {
        return fallback;
      });
  }

  function setGeoJSON(map, id, data, layer) {
    var source = map.getSource(id);
    if (source) {
      source.setData(data);
      return;
    }
    map.addSource(id, { type: "geojson", data: data });
    map.addLayer(Object.assign({ id: id, source: id }, layer));
  }

  function showFootprint(item) {
    var map = viewer.map;
    var feature = { type: "Feature", geometry: item.geometry, properties: {} };
    setGeoJSON(map, "footprint", feature, {
      type: "line",
      paint: { "line-color": "#d6336c", "line-width": 2 },
    });
    setGeoJSON(map, "clicked", { type: "FeatureCollection", features: [] }, {
      type: "circle",
      paint: { "circle-radius": 5, "circle-color": "#fff", "circle-stroke-color": "#000", "circle-stroke-width": 2 },
    });
    if (item.bbox) {
      map.fitBounds(
        [
          [item.bbox[0], item.bbox[1]],
          [item.bbox[2], item.bbox[3]],
        ],
        { padding: 30, animate: false }
      );
    }
  }

  /* A URL template with its query parameters replaced; `{z}/{x}/{y}` stay as they are
   * (URL objects would percent-encode the braces). */
  function withQuery(template, values) {
    var cut = template.indexOf("?");
    var path = cut >= 0 ? template.slice(0, cut) : template;
    var query = new URLSearchParams(cut >= 0 ? template.slice(cut + 1) : "");
    Object.keys(values).forEach(function (key) {
      if (values[key] === null || values[key] === undefined || values[key] === "") query.delete(key);
      else query.set(key, values[key]);
    });
    var text = query.toString();
    return text ? path + "?" + text : path;
  }

  function itemUrl(item) {
    return API + "collections/" + encodeURIComponent(item.collection) + "/items/" + encodeURIComponent(item.id);
  }

  /* The item's `xyz` link for this variable (or its first), else the contract's path. */
  function xyzTemplate(item, variable) {
    var links = linkOf(item, "xyz");
    var own = links.filter(function (l) {
      return new URLSearchParams(l.href.split("?")[1] || "").get("variable") === variable;
    });
    var chosen = own[0] || links[0];
    if (chosen) return local(chosen.href);
    return itemUrl(item) + "/tiles/WebMercatorQuad/{z}/{x}/{y}.png";
  }

  /* Colours of the classes: their `color_hint`, else the palette's, in class order. */
  function classColours(classes) {
    var colours = {};
    (classes || []).forEach(function (entry, position) {
      colours[entry.value] = entry.color_hint ? "#" + entry.color_hint : CLASS_PALETTE[position % CLASS_PALETTE.length];
    });
    return colours;
  }

  /* The style sent with each tile: the legend shows exactly this. Classes the item names
   * are sent as a JSON colormap; without names the service picks the class colours. */
  function tileQuery() {
    var name = $("variable").value;
    var colormap = $("colormap").value;
    var range = rescale();
    var classes = classesOf(state.item, name);
    if (colormap === "classes") colormap = classes ? JSON.stringify(classColours(classes)) : null;
    return {
      variable: name,
      time: hasTime(state.item, name) ? $("time").value : null,
      colormap: colormap,
      rescale: range ? range.join(",") : null,
    };
  }

  /* Zoom range and bounds from the item's tilejson, when it has one that answers. */
  function tileJson(item, query) {
    var link = linkOf(item, "tilejson")[0];
    var url = link ? local(link.href) : itemUrl(item) + "/tilejson.json";
    return fetchJSON(withQuery(url, query)).catch(function () {
      return {};
    });
  }

  function showLayer() {
    var map = viewer.map;
    var item = state.item;
    var query = tileQuery();
    var url = withQuery(xyzTemplate(item, query.variable), query);
    return tileJson(item, query).then(function (tilejson) {
      if (state.item !== item) return;
      if (map.getLayer("cube")) map.removeLayer("cube");
      if (map.getSource("cube")) map.removeSource("cube");
      var source = { type: "raster", tiles: [url], tileSize: 256, bounds: tilejson.bounds || item.bbox };
      if (typeof tilejson.minzoom === "number") source.minzoom = tilejson.minzoom;
      if (typeof tilejson.maxzoom === "number") source.maxzoom = tilejson.maxzoom;
      viewer.tileUrl = url;
      viewer.tileErrors = 0;
      map.addSource("cube", source);
      map.addLayer(
        { id: "cube", type: "raster", source: "cube", paint: { "raster-resampling": "nearest", "raster-fade-duration": 0 } },
        "footprint"
      );
    });
  }

  function update() {
    if (!state.item) return undefined;
    showMessage("");
    remember();
    showLegend();
    showLayer();
  }

  // -- legend ------------------------------------------------------------------------------

  function showLegend() {
    var item = state.item;
    var name = $("variable").value;
    var variable = variablesOf(item)[name] || {};
    $("legend-title").textContent = name + (variable.unit ? " (" + variable.unit + ")" : "");
    var legend = $("legend");
    legend.textContent = "";
    var classes = classesOf(item, name);
    if ($("colormap").value === "classes") {
      legend.appendChild(classList(classes));
      return;
    }
    var colours = state.colormaps[$("colormap").value] || [];
    var bar = document.createElement("div");
    bar.className = "gradient";
    bar.style.background = "linear-gradient(to right, " + colours.join(", ") + ")";
    var labels = document.createElement("div");
    labels.className = "gradient-labels";
    var range = rescale();
    [range ? range[0] : "min", range ? range[1] : "max"].forEach(function (text) {
      var span = document.createElement("span");
      span.textContent = String(text);
      labels.appendChild(span);
    });
    legend.appendChild(bar);
    legend.appendChild(labels);
    if (!range) {
      var note = document.createElement("p");
      note.textContent = "Range: the service's default (set one above).";
      legend.appendChild(note);
    }
  }

  function classList(classes) {
    var list = document.createElement("ul");
    list.className = "classes";
    var colours = classColours(classes);
    (classes || []).forEach(function (entry) {
      var row = document.createElement("li");
      var swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = colours[entry.value];
      var label = document.createElement("span");
      label.textContent = entry.value + ": " + (entry.title || entry.description || entry.name);
      row.appendChild(swatch);
      row.appendChild(label);
      list.appendChild(row);
    });
    if (!classes) list.textContent = "Classes: the service's default colours.";
    return list;
  }

  // -- time series -------------------------------------------------------------------------

  function clearChart() {
    if (chart) chart.destroy();
    chart = null;
    viewer.lastSeries = null;
    $("chart-hint").classList.remove("hidden");
    if (viewer.map && viewer.map.getSource("clicked")) {
      viewer.map.getSource("clicked").setData({ type: "FeatureCollection", features: [] });
    }
  }

  /* Times and values of a CoverageJSON Coverage (or the first of a CoverageCollection). */
  function seriesOf(coverage, name) {
    if (coverage.type === "CoverageCollection") coverage = (coverage.coverages || [])[0] || {};
    var axes = (coverage.domain || {}).axes || {};
    var range = (coverage.ranges || {})[name];
    if (!range) throw new ApiError(0, "the answer has no values for " + name);
    var time = axes.t || axes.time;
    return { times: time ? time.values : [], values: range.values };
  }

  function requestSeries(lon, lat) {
    var item = state.item;
    if (!item) return;
    var name = $("variable").value;
    var point = "POINT(" + lon.toFixed(6) + " " + lat.toFixed(6) + ")";
    var url = itemUrl(item) + "/position?" + new URLSearchParams({ coords: point, "parameter-name": name });
    viewer.lastPositionUrl = url;
    viewer.map.getSource("clicked").setData({ type: "Point", coordinates: [lon, lat] });
    showMessage("Reading " + name + " at " + lon.toFixed(5) + ", " + lat.toFixed(5) + " ...");
    viewer.pending = true;
    return fetchJSON(url)
      .then(function (coverage) {
        var series = seriesOf(coverage, name);
        viewer.lastSeries = { variable: name, lon: lon, lat: lat, times: series.times, values: series.values };
        drawChart(viewer.lastSeries);
        showMessage("");
      })
      .catch(function (error) {
        clearChart();
        showMessage(error.message || String(error), true);
      })
      .then(function () {
        viewer.pending = false;
      });
  }

  function drawChart(series) {
    if (chart) chart.destroy();
    $("chart-hint").classList.add("hidden");
    var unit = (variablesOf(state.item)[series.variable] || {}).unit;
    $("chart-title").textContent = series.variable + " at " + series.lon.toFixed(4) + ", " + series.lat.toFixed(4);
    var xs = series.times.length
      ? series.times.map(function (t) {
          return Date.parse(t) / 1000;
        })
      : [0];
    var ys = series.values.map(function (v) {
      return v === null || (typeof v === "number" && !isFinite(v)) ? null : v;
    });
    var options = {
      width: $("chart").clientWidth || 340,
      height: 220,
      scales: { x: { time: series.times.length > 0 } },
      series: [{}, { label: series.variable + (unit ? " (" + unit + ")" : ""), stroke: "#1f6fb2", width: 2, points: { show: true } }],
      axes: [{}, { size: 60 }],
    };
    chart = new uPlot(options, [xs, ys], $("chart"));
  }

  // -- start -------------------------------------------------------------------------------

  function loadCatalogue() {
    return Promise.all([
      fetchJSON(API),
      fetchJSON(API + "collections?limit=100").catch(function () {
        return { collections: [] };
      }),
      fetchJSON(new URL("../colormaps.json", SCRIPT_URL).href),
    ]).then(function (answers) {
      var self = linkOf(answers[0], "self")[0];
      state.publicRoot = self ? self.href.replace(/\/?$/, "/") : null;
      (answers[1].collections || []).forEach(function (c) {
        state.titles[c.id] = c.title || c.id;
      });
      state.colormaps = answers[2];
      return searchCubes();
    });
  }

  /* A cube the API serves as a map: its `xyz` links (web-map-links), or a `zarr` asset
   * (harvested files described with the datacube extension have `cube:variables` too). */
  function isServedCube(item) {
    var zarr = (item.assets || {}).zarr;
    return linkOf(item, "xyz").length > 0 || Boolean(zarr && zarr.href);
  }

  /* Variables that draw as a map: y and x are their last dimensions. */
  function mapVariables(item) {
    var variables = variablesOf(item);
    return Object.keys(variables)
      .filter(function (name) {
        return (variables[name].dimensions || []).slice(-2).join() === "y,x";
      })
      .sort();
  }

  function listCubes(items, wanted) {
    items.filter(isServedCube).forEach(function (item) {
      (state.items[item.collection] = state.items[item.collection] || []).push(item);
    });
    var ids = Object.keys(state.items).sort();
    fill(
      $("collection"),
      ids.map(function (id) {
        return [id, state.titles[id] || id];
      }),
      wanted.collection
    );
    if (!ids.length) {
      showMessage("This catalogue has no cube items yet (items with cube:variables).");
      return;
    }
    chooseCollection($("collection").value, wanted);
  }

  function wire() {
    $("collection").addEventListener("change", function () {
      clearChart();
      chooseCollection($("collection").value, {});
    });
    $("item").addEventListener("change", function () {
      clearChart();
      chooseItem({});
    });
    $("variable").addEventListener("change", function () {
      chooseVariable({});
    });
    $("colormap").addEventListener("change", update);
    $("time").addEventListener("change", update);
    ["rescale-min", "rescale-max"].forEach(function (id) {
      $(id).addEventListener("change", function () {
        var range = rescale();
        if (range && !(range[0] < range[1])) {
          showMessage("Range: the minimum must be below the maximum.", true);
          return;
        }
        if (range) state.rescales[$("variable").value] = range;
        update();
      });
    });
  }

  function start() {
    var wanted = {};
    params().forEach(function (value, key) {
      wanted[key] = value;
    });
    wire();
    Promise.all([createMap(), loadCatalogue()])
      .then(function (done) {
        listCubes(done[1], wanted);
        viewer.status = "ready";
      })
      .catch(function (error) {
        viewer.status = "error";
        showMessage("The catalogue could not be read: " + (error.message || error), true);
      });
  }

  start();
})();
