{
  "targets": [
    {
      "target_name": "nsprobe",
      "sources": [
        "native/addon.cc",
        "native/enter.cc",
        "native/child.cc",
        "native/clone.cc",
        "native/netlink.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_DISABLE_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED"
      ],
      "cflags": [
        "-Wall",
        "-Wextra",
        "-Wno-unused-parameter",
        "-Wno-missing-field-initializers",
        "-fno-exceptions",
        "-O2"
      ],
      "cflags_cc": [
        "-std=c++17",
        "-fno-exceptions",
        "-O2",
        "-frtti",
        "-include",
        "<(module_root_dir)/native/glibc-floor.h"
      ],
      "cflags!": [
        "-fno-exceptions"
      ],
      "cflags_cc!": [
        "-fno-exceptions",
        "-fno-rtti"
      ],
      "libraries": [
        "-Wl,--no-as-needed",
        "-ldl",
        "-lpthread",
        "-Wl,--as-needed"
      ]
    },
    {
      "target_name": "nsprobe-seccomp-exec",
      "type": "executable",
      "sources": [
        "native/seccomp-exec.c"
      ],
      "cflags": [
        "-O2",
        "-Wall"
      ],
      "ldflags": [
        "-static"
      ]
    },
    {
      "target_name": "nsprobe-serve",
      "type": "executable",
      "sources": [
        "native/serve.cc",
        "native/child.cc",
        "native/clone.cc",
        "native/netlink.cc"
      ],
      "cflags": [
        "-O2",
        "-Wall",
        "-fno-stack-protector",
        "-ffreestanding",
        "-fno-pie",
        "-fno-asynchronous-unwind-tables"
      ],
      "cflags_cc": [
        "-std=c++17",
        "-fno-exceptions",
        "-fno-rtti"
      ],
      "ldflags": [
        "-nostdlib",
        "-static",
        "-no-pie"
      ],
      "cflags!": [
        "-pthread",
        "-fPIC",
        "-fPIE"
      ],
      "ldflags!": [
        "-pthread",
        "-rdynamic"
      ],
      "conditions": [
        [
          "target_arch=='arm64'",
          {
            "cflags": [
              "-mno-outline-atomics"
            ]
          }
        ]
      ]
    },
    {
      "target_name": "nsprobe-agent",
      "type": "executable",
      "sources": [
        "native/agent.cc",
        "native/enter.cc",
        "native/child.cc",
        "native/clone.cc",
        "native/netlink.cc"
      ],
      "cflags": [
        "-O2",
        "-Wall",
        "-fno-stack-protector",
        "-ffreestanding",
        "-fno-pie",
        "-fno-asynchronous-unwind-tables",
        "-ffunction-sections",
        "-fdata-sections"
      ],
      "cflags_cc": [
        "-std=c++17",
        "-fno-exceptions",
        "-fno-rtti"
      ],
      "ldflags": [
        "-nostdlib",
        "-static",
        "-no-pie",
        "-Wl,--gc-sections",
        "-s"
      ],
      "cflags!": [
        "-pthread",
        "-fPIC",
        "-fPIE"
      ],
      "ldflags!": [
        "-pthread",
        "-rdynamic"
      ],
      "conditions": [
        [
          "target_arch=='arm64'",
          {
            "cflags": [
              "-mno-outline-atomics"
            ]
          }
        ]
      ]
    },
    {
      "target_name": "nsprobe-rawbench",
      "type": "executable",
      "sources": [
        "native/rawbench.c"
      ],
      "cflags": [
        "-O2",
        "-Wall"
      ],
      "ldflags": [
        "-static"
      ]
    }
  ]
}
