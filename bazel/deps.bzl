"""Everything this workspace (or a downstream workspace) needs, offline, on Debian 12.

WORKSPACE usage:
    load("@kvindex//bazel:deps.bzl", "kvindex_deps")
    kvindex_deps()

Each repository is only declared if the WORKSPACE has not declared it already, so
a consumer can declare the real @com_google_absl etc. *before* calling this.
"""

load(":clang_toolchain.bzl", "clang_configure")
load(":offline_shims.bzl", "coverage_tools_shim", "rules_cc_shim", "rules_java_shim")
load(":system_libs.bzl", "system_absl", "system_repo")

_LIBDIR = "/usr/lib/x86_64-linux-gnu"

def _maybe(repo_rule, name, **kwargs):
    if not native.existing_rule(name):
        repo_rule(name = name, **kwargs)

def kvindex_deps():
    """Declares the offline stand-ins, the system libraries and @local_config_clang."""

    # Stand-ins for what Bazel 4.2.3's built-in WORKSPACE suffix would download.
    _maybe(rules_cc_shim, "rules_cc")
    _maybe(rules_java_shim, "rules_java")
    _maybe(coverage_tools_shim, "remote_coverage_tools")

    # Debian's libraries under their upstream repository names.
    _maybe(
        system_repo,
        "com_google_googletest",
        build_file = Label("//bazel/system:googletest.BUILD"),
        required_files = [
            "/usr/include/gtest/gtest.h",
            "/usr/include/gmock/gmock.h",
            _LIBDIR + "/libgtest.a",
            _LIBDIR + "/libgtest_main.a",
            _LIBDIR + "/libgmock.a",
        ],
        apt_packages = "libgtest-dev libgmock-dev",
    )
    _maybe(system_absl, "com_google_absl")
    _maybe(
        system_repo,
        "rapidcheck",
        build_file = Label("//bazel/system:rapidcheck.BUILD"),
        required_files = [
            "/usr/include/rapidcheck.h",
            "/usr/include/rapidcheck/gtest.h",
            _LIBDIR + "/librapidcheck.a",
        ],
        apt_packages = "librapidcheck-dev",
    )
    _maybe(
        system_repo,
        "xxhash",
        build_file = Label("//bazel/system:xxhash.BUILD"),
        required_files = ["/usr/include/xxhash.h", _LIBDIR + "/libxxhash.so"],
        apt_packages = "libxxhash-dev",
    )
    _maybe(
        system_repo,
        "nlohmann_json",
        build_file = Label("//bazel/system:nlohmann_json.BUILD"),
        required_files = ["/usr/include/nlohmann/json.hpp"],
        apt_packages = "nlohmann-json3-dev",
    )

    # A second C++ toolchain, built with clang-14 (for --config=clang / --config=fuzz).
    _maybe(clang_configure, "local_config_clang")
