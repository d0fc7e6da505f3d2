/* Field work: fills the check-in form's read-only position from the browser (navigator.geolocation) and draws
   the customer map (an ECharts scatter on longitude / latitude, no map tiles). The forms work without it. */
(function () {
  "use strict";

  function locate() {
    var status = document.getElementById("locate-status");
    var latitude = document.getElementById("latitude");
    if (!status || !latitude || !navigator.geolocation) return;
    var button = document.getElementById("locate");
    status.textContent = status.dataset.locating;
    status.className = "locate-status";
    navigator.geolocation.getCurrentPosition(function (position) {
      var coords = position.coords;
      latitude.value = coords.latitude.toFixed(6);
      document.getElementById("longitude").value = coords.longitude.toFixed(6);
      if (coords.accuracy > 0) document.getElementById("accuracy").value = Math.round(coords.accuracy * 10) / 10;
      status.textContent = status.dataset.located + " " + Math.round(coords.accuracy) + " " + status.dataset.unit;
      status.className = "locate-status good";
    }, function () {
      status.textContent = status.dataset.failed;
      status.className = "locate-status bad";
      var manual = document.getElementById("manual-position");
      if (manual) manual.open = true;
    }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
    if (button) button.hidden = false;
  }

  function drawMap() {
    var node = document.getElementById("map-chart");
    var source = document.getElementById("map-data");
    if (!node || !source || !window.echarts) return;
    var found = JSON.parse(source.textContent);
    var chart = echarts.init(node, null, { renderer: "canvas" });
    chart.setOption({
      animation: false,
      tooltip: {
        trigger: "item",
        formatter: function (item) { return item.data[2] + "<br>" + item.data[4] + " · " + item.data[3]; }
      },
      grid: { left: 50, right: 20, top: 20, bottom: 40 },
      xAxis: { type: "value", name: node.dataset.lon, scale: true, nameLocation: "middle", nameGap: 26 },
      yAxis: { type: "value", name: node.dataset.lat, scale: true },
      dataZoom: [{ type: "inside", xAxisIndex: 0 }, { type: "inside", yAxisIndex: 0 }],
      series: [{ type: "scatter", symbolSize: 9, data: found.points, itemStyle: { color: "#2456d6", opacity: 0.75 } }]
    });
    chart.on("click", function (event) { if (event.data) window.location.href = "/accounts/" + event.data[5]; });
    window.addEventListener("resize", function () { chart.resize(); });
  }

  /* typing a position by hand marks it as entered by hand (the server stores it so, without accuracy) */
  function markManual() {
    var box = document.getElementById("manual");
    if (box) box.checked = true;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var button = document.getElementById("locate");
    if (button) button.addEventListener("click", locate);
    ["manual_latitude", "manual_longitude"].forEach(function (id) {
      var input = document.getElementById(id);
      if (input) input.addEventListener("input", markManual);
    });
    locate();
    drawMap();
  });
})();
