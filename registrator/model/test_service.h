// A Service with just the four fields the backend tests vary (name, ID, IP, port), for the
// codec and adapter tests that build many of them.
#ifndef REGISTRATOR_MODEL_TEST_SERVICE_H_
#define REGISTRATOR_MODEL_TEST_SERVICE_H_

#include <string>

#include "registrator/model/service.h"

namespace registrator::fakes {

inline Service MakeService(const std::string& name, const std::string& id, const std::string& ip,
                           int port) {
  Service s;
  s.name = name;
  s.id = id;
  s.ip = ip;
  s.port = port;
  return s;
}

}  // namespace registrator::fakes

#endif  // REGISTRATOR_MODEL_TEST_SERVICE_H_
