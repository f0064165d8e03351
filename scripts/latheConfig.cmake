# latheConfig.cmake — find_package(lathe) support: defines the imported target lathe::liblathe
# (static liblathe with its link dependencies and include/lathe/lathe.h).
include("${CMAKE_CURRENT_LIST_DIR}/latheTargets.cmake")
