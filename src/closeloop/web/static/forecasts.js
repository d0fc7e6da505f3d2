/* The forecast page: draws the expected bookings with their 80 % interval (a band between the 10th
   and 90th percentiles) beside commit and best case, and each stored forecast against what was
   booked, from the JSON blocks the server renders. The tables below hold the same figures. */
(function () {
  "use strict";

  function data(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function compact(value, locale) {
    try {
      return new Intl.NumberFormat(locale === "en" ? "en" : "zh-CN", { notation: "compact", maximumFractionDigits: 1 }).format(value);
    } catch (e) { return String(value); }
  }

  function axis(found) {
    return { type: "value", axisLabel: { formatter: function (v) { return compact(v, found.locale); } } };
  }

  function drawForecast(found, labels) {
    var node = document.getElementById("forecast-chart");
    if (!node || !window.echarts) return;
    var chart = echarts.init(node, null, { renderer: "svg" });
    // on a phone the four legend entries would wrap onto the axis's top label: one scrolling row
    var narrow = node.clientWidth < 560;
    chart.setOption({
      animation: false,
      grid: { left: 64, right: 24, top: narrow ? 44 : 36, bottom: 36 },
      legend: { top: 0, type: narrow ? "scroll" : "plain",
                data: [labels.expected, labels.interval, labels.commit, labels.best_case] },
      tooltip: { trigger: "axis" },
      xAxis: { type: "category", data: found.periods },
      yAxis: axis(found),
      series: [
        { name: labels.interval, type: "line", stack: "band", symbol: "none", lineStyle: { opacity: 0 },
          data: found.low, tooltip: { show: false } },
        { name: labels.interval, type: "line", stack: "band", symbol: "none", lineStyle: { opacity: 0 },
          areaStyle: { color: "rgba(36, 86, 214, 0.18)" },
          data: found.high.map(function (h, i) { return Math.max(h - found.low[i], 0); }), tooltip: { show: false } },
        { name: labels.expected, type: "line", symbolSize: 8, itemStyle: { color: "#2456d6" }, lineStyle: { width: 3 },
          data: found.expected },
        { name: labels.commit, type: "bar", barMaxWidth: 22, itemStyle: { color: "#12b76a" }, data: found.commit },
        { name: labels.best_case, type: "bar", barMaxWidth: 22, itemStyle: { color: "#f79009" }, data: found.best_case }
      ]
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }

  function drawAccuracy(found, labels) {
    var node = document.getElementById("accuracy-chart");
    if (!node || !window.echarts || !found.accuracy.length) return;
    var chart = echarts.init(node, null, { renderer: "svg" });
    var rows = found.accuracy;
    chart.setOption({
      animation: false,
      grid: { left: 64, right: 24, top: 36, bottom: 70 },
      legend: { top: 0, data: [labels.expected, labels.actual] },
      tooltip: { trigger: "axis" },
      xAxis: { type: "category", data: rows.map(function (r) { return r.label; }), axisLabel: { rotate: 30 } },
      yAxis: axis(found),
      series: [
        { name: labels.expected, type: "scatter", symbolSize: 9, itemStyle: { color: "#2456d6" },
          data: rows.map(function (r) { return r.expected; }) },
        { name: labels.actual, type: "bar", barMaxWidth: 26, itemStyle: { color: "#98a2b3" },
          data: rows.map(function (r) { return r.actual; }) }
      ]
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }

  function draw() {
    var found = data("forecast-data");
    var labels = data("forecast-labels");
    if (!found || !labels) return;
    drawForecast(found, labels);
    drawAccuracy(found, labels);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
