/* Dashboards: draws the funnel and the performance chart from the JSON blocks the server renders,
   and turns a click on a step or a bar into the page one level deeper. */
(function () {
  "use strict";
  var palette = ["#2456d6", "#3b6ee8", "#5a86f0", "#7fa2f5", "#a8c0fa"];

  function data(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function drawFunnel() {
    var node = document.getElementById("funnel-chart");
    var found = data("funnel-data");
    if (!node || !found || !window.echarts) return;
    var chart = echarts.init(node, null, { renderer: "svg" });
    chart.setOption({
      animation: false,
      tooltip: { trigger: "item", formatter: "{b}: {c}" },
      series: [{
        type: "funnel", sort: "none", left: "8%", right: "8%", top: 10, bottom: 10, minSize: "18%", gap: 3,
        label: { show: true, position: "inside", color: "#fff", fontWeight: 600, formatter: "{b}  {c}" },
        itemStyle: { borderColor: "#fff", borderWidth: 1 },
        data: found.labels.map(function (label, i) {
          return { name: label, value: found.steps[i], url: found.urls[i], itemStyle: { color: palette[i % palette.length] } };
        })
      }]
    });
    chart.on("click", function (event) { if (event.data && event.data.url) window.location.href = event.data.url; });
    window.addEventListener("resize", function () { chart.resize(); });
  }

  // the same short figures as the pages (web/i18n.py format_compact): 万 in Chinese, K/M/B in English
  function compact(value, locale) {
    var english = locale === "en";
    var units = english ? [[1e9, "B"], [1e6, "M"], [1e3, "K"]] : [[1e4, "万"]];
    var suffix = "";
    for (var i = 0; i < units.length; i++) {
      if (Math.abs(value) >= units[i][0]) { value = value / units[i][0]; suffix = units[i][1]; break; }
    }
    try {
      return new Intl.NumberFormat(english ? "en" : "zh-CN", { maximumFractionDigits: 2 }).format(value) + suffix;
    } catch (e) { return String(value) + suffix; }
  }

  function drawPerformance() {
    var node = document.getElementById("performance-chart");
    var found = data("performance-data");
    if (!node || !found || !window.echarts) return;
    var chart = echarts.init(node, null, { renderer: "svg" });
    var bars = found.bars;
    chart.setOption({
      animation: false,
      grid: { left: 64, right: 56, top: 36, bottom: bars.length > 8 ? 90 : 48 },
      legend: { top: 0, data: [found.revenue_label, found.win_rate_label] },
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      xAxis: { type: "category", data: bars.map(function (b) { return b.label; }),
               axisLabel: { interval: 0, rotate: bars.length > 8 ? 35 : 0, width: 110, overflow: "truncate" } },
      yAxis: [
        { type: "value", axisLabel: { formatter: function (v) { return compact(v, found.locale); } } },
        { type: "value", min: 0, max: 1, axisLabel: { formatter: function (v) { return Math.round(v * 100) + "%"; } }, splitLine: { show: false } }
      ],
      series: [
        { name: found.revenue_label, type: "bar", barMaxWidth: 44, cursor: "pointer",
          itemStyle: { color: "#2456d6", borderRadius: [4, 4, 0, 0] },
          data: bars.map(function (b) { return { value: b.revenue, url: b.url }; }) },
        { name: found.win_rate_label, type: "line", yAxisIndex: 1, symbolSize: 7, itemStyle: { color: "#f79009" },
          data: bars.map(function (b) { return { value: b.win_rate, url: b.url }; }) }
      ]
    });
    chart.on("click", function (event) { if (event.data && event.data.url) window.location.href = event.data.url; });
    window.addEventListener("resize", function () { chart.resize(); });
  }

  function wireAlertToggle() {
    document.addEventListener("click", function (event) {
      var button = event.target.closest ? event.target.closest("[data-toggle=alert-form]") : null;
      if (!button) return;
      var form = document.getElementById("alert-form");
      if (!form) return;
      var open = form.classList.toggle("collapsed") === false;
      button.setAttribute("aria-expanded", open ? "true" : "false");
      if (open) { var first = form.querySelector("select, input:not([type=hidden])"); if (first) first.focus(); }
    });
  }

  function start() { drawFunnel(); drawPerformance(); }
  document.addEventListener("DOMContentLoaded", function () { start(); wireAlertToggle(); });
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.target && event.target.id === "funnel-body") drawFunnel();
  });
})();
