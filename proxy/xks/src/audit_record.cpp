// An XKS request's audit fields.
#include "xks/proxy/xks/audit_record.h"

#include "xks/proxy/ops/audit_chain.h"

namespace xks::proxy {

std::string audit_fields(const AuditRecord& record) {
  // Written by hand rather than through a JSON library: this runs for every request.
  const wire::RequestMetadata& m = record.metadata;
  std::string fields;
  fields.reserve(512 + m.aws_principal_arn.size() + m.kms_key_arn.size());
  append_json_field(fields, "time", utc_timestamp(record.time));
  append_json_field(fields, "kmsRequestId", m.kms_request_id);
  append_json_field(fields, "keystore", record.keystore);
  append_json_field(fields, "externalKeyId", record.key_id);
  append_json_field(fields, "operation", record.operation);
  append_json_field(fields, "kmsOperation", m.kms_operation);
  append_json_field(fields, "awsPrincipalArn", m.aws_principal_arn);
  append_json_field(fields, "kmsKeyArn", m.kms_key_arn);
  append_json_field(fields, "kmsViaService", m.kms_via_service);
  append_json_field(fields, "awsSourceVpc", m.aws_source_vpc);
  append_json_field(fields, "awsSourceVpce", m.aws_source_vpce);
  append_json_field(fields, "outcome", record.outcome);
  append_json_field(fields, "errorName", record.error_name);
  append_json_number(fields, "status", record.status);
  append_json_number(fields, "latencyUs", record.latency_us);
  append_json_field(fields, "hsm", record.hsm_id);
  append_json_field(fields, "clientSubject", record.client_subject);
  append_json_field(fields, "client", record.client_address);
  if (!record.authz_rule.empty())
    append_json_field(fields, "rule", record.authz_rule);
  if (!record.refusal.empty())
    append_json_field(fields, "refusal", record.refusal);
  return fields;
}

}  // namespace xks::proxy
