// Charter dashboard behaviour that is not htmx: charts drawn from JSON embedded in the page.
(function () {
  "use strict";

  function drawCharts(root) {
    if (typeof uPlot === "undefined") return;
    root.querySelectorAll("[data-chart]").forEach(function (holder) {
      if (holder.dataset.drawn) return;
      var source = document.getElementById(holder.dataset.chart);
      if (!source) return;
      var spec = JSON.parse(source.textContent);
      var width = Math.max(320, holder.clientWidth || 640);
      var series = [{}].concat(spec.series.map(function (s) {
        return { label: s.label, stroke: s.color, width: 2, scale: s.scale || "y",
                 points: { show: true, size: 6 },
                 value: function (u, v) { return v == null ? "—" : v.toFixed(s.digits || 2); } };
      }));
      var axes = [{}].concat(spec.axes.map(function (a, i) {
        return { scale: a.scale, label: a.label, side: i === 0 ? 3 : 1,
                 grid: { show: i === 0 } };
      }));
      var scales = { x: { time: true } };
      spec.axes.forEach(function (a) { scales[a.scale] = a.range ? { range: a.range } : {}; });
      new uPlot({ width: width, height: 260, series: series, axes: axes, scales: scales },
                spec.data, holder);
      holder.dataset.drawn = "1";
      holder.dataset.points = String(spec.data[0].length);
    });
  }

  document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
  document.addEventListener("htmx:afterSwap", function (e) { drawCharts(e.target); });
})();
