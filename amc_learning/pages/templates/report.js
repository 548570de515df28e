document.querySelectorAll('table.sortable th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0];
    var asc = !th.classList.contains('asc');
    th.parentNode.querySelectorAll('th').forEach(function (h) {
      h.classList.remove('asc', 'desc'); });
    th.classList.add(asc ? 'asc' : 'desc');
    var key = function (row) {
      var cell = row.cells[th.cellIndex], v = cell.getAttribute('data-v');
      if (v === null) v = cell.textContent;
      var n = parseFloat(v);
      return isNaN(n) || v === '' ? v.toLowerCase() : n; };
    Array.from(body.rows).sort(function (a, b) {
      var x = key(a), y = key(b), c = (typeof x === typeof y) ? (x < y ? -1 : x > y ? 1 : 0)
        : (typeof x === 'number' ? -1 : 1);
      return asc ? c : -c; }).forEach(function (r) { body.appendChild(r); });
  });
});
