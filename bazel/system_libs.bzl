"""Repository rules that expose Debian's -dev packages under the upstream
projects' canonical Bazel repository names, so that a consumer with the real
source repositories can swap them in without touching BUILD files:

  @com_google_googletest//:gtest, :gtest_main         (libgtest-dev, libgmock-dev)
  @com_google_absl//absl/<pkg>:<target>                (libabsl-dev, from its .pc files)
  @rapidcheck//:rapidcheck, :rapidcheck_gtest          (librapidcheck-dev)
  @xxhash//:xxhash                                     (libxxhash-dev)
  @nlohmann_json//:json                                (nlohmann-json3-dev, header-only)

Headers are found through the compiler's default /usr/include (a built-in include
directory of the autoconfigured toolchain, so Bazel's inclusion check accepts them);
libraries are linked with -l flags from the default linker search path.
"""

load(":absl_labels.bzl", "ABSL_LABELS")

def _check(rctx):
    missing = [f for f in rctx.attr.required_files if not rctx.path(f).exists]
    if missing:
        fail("%s: %s not found; install it with: apt-get install -y %s" % (
            rctx.name,
            ", ".join(missing),
            rctx.attr.apt_packages,
        ))

def _system_repo_impl(rctx):
    _check(rctx)
    rctx.file("WORKSPACE", 'workspace(name = "%s")\n' % rctx.name)
    rctx.symlink(rctx.attr.build_file, "BUILD.bazel")

system_repo = repository_rule(
    implementation = _system_repo_impl,
    attrs = {
        "build_file": attr.label(allow_single_file = True, mandatory = True),
        "required_files": attr.string_list(),
        "apt_packages": attr.string(),
    },
    local = True,
)

def _absl_label(component):
    label = ABSL_LABELS.get(component)
    if label == None:
        return ("absl", component)  # unknown (newer abseil): @com_google_absl//absl:<name>
    pkg, name = label.split(":")
    return (pkg, name)

def _system_absl_impl(rctx):
    source = rctx.os.environ.get("ABSL_SOURCE_DIR", "")
    if source:
        # Real Abseil source (e.g. Debian's source package, for TSan): use its own BUILD
        # files. A relative path is taken from the main workspace's root.
        if not source.startswith("/"):
            source = "%s/%s" % (rctx.path(Label("@//:WORKSPACE")).dirname, source)
        src = rctx.path(source)
        if not src.get_child("absl").exists:
            fail("ABSL_SOURCE_DIR=%s has no absl/ (run scripts/fetch-abseil-source.sh)" % source)
        for child in src.readdir():
            rctx.symlink(child, child.basename)
        return
    _check(rctx)
    pcdir = rctx.path(rctx.attr.pkgconfig_dir)
    components = {}
    for f in pcdir.readdir():
        base = f.basename
        if base.startswith("absl_") and base.endswith(".pc"):
            components[base[len("absl_"):-len(".pc")]] = rctx.read(f)
    if not components:
        fail("no absl_*.pc in %s; apt-get install -y %s" % (pcdir, rctx.attr.apt_packages))

    packages = {}
    for component in sorted(components):
        requires = []
        linkopts = []
        for line in components[component].splitlines():
            if line.startswith("Requires:"):
                for item in line[len("Requires:"):].split(","):
                    dep = item.strip().split(" ")[0]
                    if dep.startswith("absl_"):
                        requires.append(dep[len("absl_"):])
            elif line.startswith("Libs:"):
                linkopts = [t for t in line[len("Libs:"):].split(" ") if t and not t.startswith("-L")]
        pkg, name = _absl_label(component)
        deps = []
        for dep in requires:
            dpkg, dname = _absl_label(dep)
            deps.append("//%s:%s" % (dpkg, dname))
        packages.setdefault(pkg, []).append(
            "cc_library(\n    name = %r,\n    deps = %r,\n    linkopts = %r,\n)\n" % (name, deps, linkopts),
        )

    rctx.file("WORKSPACE", 'workspace(name = "%s")\n' % rctx.name)
    rctx.file("BUILD.bazel", "")
    for pkg, rules in packages.items():
        rctx.file(
            pkg + "/BUILD.bazel",
            "# Generated from %s/absl_*.pc\npackage(default_visibility = [\"//visibility:public\"])\n\n" % pcdir +
            "\n".join(rules),
        )

system_absl = repository_rule(
    implementation = _system_absl_impl,
    attrs = {
        "pkgconfig_dir": attr.string(default = "/usr/lib/x86_64-linux-gnu/pkgconfig"),
        "required_files": attr.string_list(default = ["/usr/include/absl/base/config.h"]),
        "apt_packages": attr.string(default = "libabsl-dev"),
    },
    environ = ["ABSL_SOURCE_DIR"],
    local = True,
)
