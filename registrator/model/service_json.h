// One JSON rendering of a Service, shared by the log:// backend and the /services endpoint.
#ifndef REGISTRATOR_MODEL_SERVICE_JSON_H_
#define REGISTRATOR_MODEL_SERVICE_JSON_H_

#include <string>

#include "registrator/model/service.h"

namespace registrator {

// The members of the service's JSON object without the braces:
// "id":..,"name":..,"ip":..,"port":..,"tags":[..],"attrs":{..}[,"ttl":n]
std::string ServiceJsonMembers(const Service& service);

}  // namespace registrator

#endif  // REGISTRATOR_MODEL_SERVICE_JSON_H_
