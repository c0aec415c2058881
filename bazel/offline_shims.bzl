"""Offline stand-ins for the repositories that Bazel 4.2.3 (Debian bazel-bootstrap)
would otherwise download from its built-in WORKSPACE suffix:

  @rules_cc               loaded by @bazel_tools//tools/cpp (needed by every C++ build)
  @rules_java             loaded by @bazel_tools//tools/jdk (needed by every test)
  @remote_coverage_tools  lcov_merger / coverage_report_generator (needed by every test)

Declare them in WORKSPACE *before* anything else (see deps.bzl).  Debian's
bazel-rules-cc 0.0.4 cannot be used: it needs a newer Bazel (use_cpp_toolchain).
"""

_RULES_CC_DEFS = '''"""Stand-in for @rules_cc//cc:defs.bzl: Bazel 4's native C++ rules."""

def cc_binary(**attrs):
    native.cc_binary(**attrs)

def cc_import(**attrs):
    native.cc_import(**attrs)

def cc_library(**attrs):
    native.cc_library(**attrs)

def cc_proto_library(**attrs):
    native.cc_proto_library(**attrs)

def cc_test(**attrs):
    native.cc_test(**attrs)

def cc_toolchain(**attrs):
    native.cc_toolchain(**attrs)

def cc_toolchain_suite(**attrs):
    native.cc_toolchain_suite(**attrs)

def fdo_prefetch_hints(**attrs):
    native.fdo_prefetch_hints(**attrs)

def fdo_profile(**attrs):
    native.fdo_profile(**attrs)

def objc_import(**attrs):
    native.objc_import(**attrs)

def objc_library(**attrs):
    native.objc_library(**attrs)
'''

_RULES_CC_EXTRA = {
    "cc/action_names.bzl": '''load("@bazel_tools//tools/build_defs/cc:action_names.bzl", _names = "ACTION_NAMES")
ACTION_NAMES = _names
''',
    "cc/cc_toolchain_config_lib.bzl": '''load(
    "@bazel_tools//tools/cpp:cc_toolchain_config_lib.bzl",
    _action_config = "action_config",
    _env_entry = "env_entry",
    _env_set = "env_set",
    _feature = "feature",
    _feature_set = "feature_set",
    _flag_group = "flag_group",
    _flag_set = "flag_set",
    _make_variable = "make_variable",
    _tool = "tool",
    _tool_path = "tool_path",
    _variable_with_value = "variable_with_value",
    _with_feature_set = "with_feature_set",
)
action_config = _action_config
env_entry = _env_entry
env_set = _env_set
feature = _feature
feature_set = _feature_set
flag_group = _flag_group
flag_set = _flag_set
make_variable = _make_variable
tool = _tool
tool_path = _tool_path
variable_with_value = _variable_with_value
with_feature_set = _with_feature_set
''',
    # Per-rule files of newer rules_cc (buildifier >= 8 --lint=fix adds these loads).
    "cc/cc_binary.bzl": 'load(":defs.bzl", _cc_binary = "cc_binary")\ncc_binary = _cc_binary\n',
    "cc/cc_import.bzl": 'load(":defs.bzl", _cc_import = "cc_import")\ncc_import = _cc_import\n',
    "cc/cc_library.bzl": 'load(":defs.bzl", _cc_library = "cc_library")\ncc_library = _cc_library\n',
    "cc/cc_test.bzl": 'load(":defs.bzl", _cc_test = "cc_test")\ncc_test = _cc_test\n',
    "cc/find_cc_toolchain.bzl": '''load("@bazel_tools//tools/cpp:toolchain_utils.bzl", "find_cpp_toolchain")
find_cc_toolchain = find_cpp_toolchain
''',
}

def _rules_cc_shim_impl(rctx):
    rctx.file("WORKSPACE", 'workspace(name = "rules_cc")\n')
    rctx.file("BUILD.bazel", "")
    rctx.file("cc/BUILD.bazel", 'exports_files(glob(["*.bzl"]))\n')
    rctx.file("cc/defs.bzl", _RULES_CC_DEFS)
    for path, content in _RULES_CC_EXTRA.items():
        rctx.file(path, content)

rules_cc_shim = repository_rule(implementation = _rules_cc_shim_impl)

_JAVA_RULES = [
    "java_binary",
    "java_import",
    "java_library",
    "java_lite_proto_library",
    "java_package_configuration",
    "java_plugin",
    "java_proto_library",
    "java_runtime",
    "java_test",
    "java_toolchain",
]

def _rules_java_shim_impl(rctx):
    rctx.file("WORKSPACE", 'workspace(name = "rules_java")\n')
    rctx.file("BUILD.bazel", "")
    rctx.file("java/BUILD.bazel", 'exports_files(["defs.bzl"])\n')
    rctx.file("java/defs.bzl", "".join([
        "def %s(**attrs):\n    native.%s(**attrs)\n\n" % (r, r)
        for r in _JAVA_RULES
    ]))

rules_java_shim = repository_rule(implementation = _rules_java_shim_impl)

def _coverage_tools_shim_impl(rctx):
    rctx.file("WORKSPACE", 'workspace(name = "remote_coverage_tools")\n')
    rctx.symlink(rctx.attr.merger, "lcov_merger.py")
    rctx.file("BUILD.bazel", """package(default_visibility = ["//visibility:public"])

# Both tools are the same offline python3 script (see {src}).
sh_binary(
    name = "lcov_merger",
    srcs = ["lcov_merger.py"],
)

sh_binary(
    name = "coverage_report_generator",
    srcs = ["lcov_merger.py"],
)
""".format(src = rctx.attr.merger))

coverage_tools_shim = repository_rule(
    implementation = _coverage_tools_shim_impl,
    attrs = {
        "merger": attr.label(
            default = Label("//bazel:lcov_merger.py"),
            allow_single_file = True,
        ),
    },
)
