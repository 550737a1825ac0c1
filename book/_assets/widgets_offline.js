// Loaded on pages with widgets, after require.js and before the widget renderer (embed-amd.js);
// see nb_ipywidgets_js in _config.yml. Two fixes so that saved ipywidgets render offline:
(function () {
  // 1. embed-amd.js loads its icon fonts from "<its AMD module URL>/../", which require.js resolves
  //    against the page's folder. Point the module at the vendored copy beside the fonts instead.
  var here = document.currentScript.src;
  var staticRoot = here.slice(0, here.lastIndexOf("/") + 1);
  if (window.require && window.require.config) {
    window.require.config({
      paths: { "@jupyter-widgets/html-manager/dist": staticRoot + "offline/widgets" },
    });
  }

  // 2. ipywidgets 8 typesets widget labels with the MathJax 2 call MathJax.Hub.Queue; the book loads
  //    MathJax 3, which has no Hub. Give every object assigned to window.MathJax (Sphinx's config,
  //    then MathJax 3 itself) a Hub.Queue that forwards to MathJax 3's typesetPromise.
  var hub = {
    Queue: function (job) {
      var mj = window.MathJax;
      var element = Array.isArray(job) ? job[2] : undefined;
      if (mj && mj.startup && mj.startup.promise && mj.typesetPromise) {
        mj.startup.promise.then(function () { return mj.typesetPromise(element ? [element] : undefined); });
      }
    },
  };
  var current = window.MathJax;
  var withHub = function (value) {
    if (value && typeof value === "object" && !value.Hub) {
      Object.defineProperty(value, "Hub", { value: hub, enumerable: false, configurable: true });
    }
    return value;
  };
  Object.defineProperty(window, "MathJax", {
    configurable: true,
    enumerable: true,
    get: function () { return current; },
    set: function (value) { current = withHub(value); },
  });
  withHub(current);
})();
