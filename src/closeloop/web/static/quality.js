/* The data-quality page's KPI history chart (ECharts); data comes from a JSON block in the page. */
(function () {
  "use strict";
  var holder = document.getElementById("kpi-chart");
  var source = document.getElementById("kpi-data");
  if (!holder || !source || !window.echarts) { return; }
  var data = JSON.parse(source.textContent);
  var colors = { title_freshness: "#2456d6", stage_log_completeness: "#067647", duplicate_rate: "#b54708" };
  var series = data.chart.series.map(function (entry) {
    var key = entry[0];
    return {
      name: data.labels[key], type: "line", smooth: true, symbolSize: 5, connectNulls: true,
      data: entry[1], itemStyle: { color: colors[key] }, lineStyle: { width: 2 }
    };
  });
  var chart = window.echarts.init(holder, null, { renderer: "svg" });
  chart.setOption({
    animation: false,
    grid: { left: 40, right: 16, top: 34, bottom: 28 },
    legend: { top: 0, left: 0, itemWidth: 14, itemHeight: 8, textStyle: { fontSize: 12, color: "#5f6b7f" } },
    tooltip: { trigger: "axis", valueFormatter: function (value) { return value == null ? "—" : value + "%"; } },
    xAxis: { type: "category", data: data.chart.dates, axisLabel: { fontSize: 11, color: "#5f6b7f" }, axisLine: { lineStyle: { color: "#cfd5df" } } },
    yAxis: { type: "value", min: 0, max: 100, axisLabel: { formatter: "{value}%", fontSize: 11, color: "#5f6b7f" }, splitLine: { lineStyle: { color: "#eef1f5" } } },
    series: series
  });
  // only a change of width redraws (a full-page capture or a scrollbar changes the height alone)
  var width = holder.clientWidth;
  window.addEventListener("resize", function () {
    if (holder.clientWidth !== width) { width = holder.clientWidth; chart.resize(); }
  });
})();
