// Loaded on pages with widgets, after require.js and before the widget renderer (embed-amd.js);
// see nb_ipywidgets_js in _config.yml. Two fixes so that saved ipywidgets render offline:
(function () {
  // 1. Each AMD module inside embed-amd.js (html-manager, base, controls and their ipywidgets-7 twins) loads
  //    its icon fonts from the folder of its own module URL, which require.js resolves against the page's
  //    folder ("chapters/@jupyter-widgets/..."). Point every one of them at the vendored folder of the fonts.
  var here = document.currentScript.src;
  var widgets = here.slice(0, here.lastIndexOf("/") + 1) + "offline/widgets";
  if (window.require && window.require.config) {
    var paths = { "@jupyter-widgets/html-manager/dist": widgets };
    ["html-manager", "base", "base7", "controls", "controls7"].forEach(function (name) {
      paths["@jupyter-widgets/" + name] = widgets + "/" + name;
    });
    window.require.config({ paths: paths });
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
