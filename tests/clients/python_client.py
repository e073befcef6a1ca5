"""A pipeline written in Python, as the test suite sees one (tests/api/clients.rs).

It knows nothing of pertinent's proto files: it finds the services and messages through
server reflection (grpcio-reflection speaks grpc.reflection.v1alpha), checks health with
grpcio-health-checking, and calls the API with gzip-compressed requests. It prints one JSON
object with what it saw; the Rust test asserts on it.

Usage: python_client.py HOST:PORT
"""

import json
import sys

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def main(addr):
    seen = {}
    with grpc.insecure_channel(addr) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        answer = health.Check(
            health_pb2.HealthCheckRequest(service="pertinent.v1.ScoringService"),
            timeout=10,
        )
        seen["health"] = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)

        database = ProtoReflectionDescriptorDatabase(channel)
        seen["services"] = sorted(database.get_services())
        pool = descriptor_pool.DescriptorPool(database)

        def call(service, method, fields):
            method_descriptor = pool.FindServiceByName(service).FindMethodByName(method)
            request_class = message_factory.GetMessageClass(method_descriptor.input_type)
            response_class = message_factory.GetMessageClass(method_descriptor.output_type)
            stub = channel.unary_unary(
                f"/{service}/{method}",
                request_serializer=request_class.SerializeToString,
                response_deserializer=response_class.FromString,
            )
            return stub(
                request_class(**fields), timeout=30, compression=grpc.Compression.Gzip
            )

        call(
            "pertinent.v1.ProspectService",
            "UpsertProspect",
            {
                "tenant": "py",
                "prospect": {
                    "id": "ana",
                    "name": "Ana Ruiz",
                    "company": "Northwind",
                    "role": "VP Operations",
                },
            },
        )
        added = call(
            "pertinent.v1.ProspectService",
            "AddSignals",
            {
                "tenant": "py",
                "prospect_id": "ana",
                "signals": [
                    {
                        "id": "s1",
                        "source": "SIGNAL_SOURCE_CALL_NOTE",
                        "text": "Pick-path travel in our warehouse is eating the night shift.",
                    }
                ],
            },
        )
        seen["signals_added"] = added.added
        scored = call(
            "pertinent.v1.ScoringService",
            "Score",
            {
                "tenant": "py",
                "prospect_id": "ana",
                "candidate": {
                    "draft": {
                        "title": "Pick paths",
                        "body": "Shorter pick paths for Northwind's night shift.",
                    }
                },
            },
        )
        seen["score"] = scored.score
        seen["decision"] = scored.DESCRIPTOR.fields_by_name["decision"].enum_type.values_by_number[
            scored.decision
        ].name
        try:
            call(
                "pertinent.v1.ScoringService",
                "Score",
                {
                    "tenant": "py",
                    "prospect_id": "nobody",
                    "candidate": {"draft": {"title": "Hi", "body": "A note."}},
                },
            )
            seen["unknown_prospect"] = "OK"
        except grpc.RpcError as error:
            seen["unknown_prospect"] = error.code().name
    print(json.dumps(seen))


if __name__ == "__main__":
    main(sys.argv[1])
