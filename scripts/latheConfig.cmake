# latheConfig.cmake — find_package(lathe) support: defines the imported targets lathe::liblathe
# (static liblathe with its link dependencies and include/lathe/lathe.h) and
# lathe::liblathe_shared (liblathe.so, the same API, exporting only the lathe_* symbols).
include("${CMAKE_CURRENT_LIST_DIR}/latheTargets.cmake")
