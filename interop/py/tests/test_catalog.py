"""The catalog generated from the schema file."""

import subprocess
import textwrap

import pytest

import neolinkpy
from neolinkpy import catalog, schema
from neolinkpy.errors import EncodeError, SchemaError

from support import PY_DIR, PYTHON, python_env


def test_catalog_size_and_codes():
    assert len(catalog.PACKETS) == 111
    assert len(catalog.MESSAGES) == 111
    kinds = [cls.kind for cls in catalog.MESSAGES.values()]
    assert kinds.count("answer") == 37
    assert kinds.count("error") == 1
    assert kinds.count("request") + kinds.count("errreq") + kinds.count("notify") == 73
    assert catalog.Error.msg_code == 0x8000
    assert catalog.RequestIdentification.code == 1
    assert catalog.AcceptIdentification.code == 0x8001
    assert catalog.AskObject.code == 32 and catalog.AnswerObject.code == 0x8020
    assert catalog.NotifyUpstreamAdmin.code == 73


#: The repository's schema, the source of truth the packaged copy must equal.
REPO_SCHEMA = PY_DIR.parents[1] / schema.SCHEMA_RELPATH


def test_catalog_comes_from_the_packaged_schema():
    parsed = schema.load_schema()
    assert [p.name for p in parsed.packets] == list(catalog.MESSAGES)
    assert catalog.SCHEMA.path == "neolinkpy/neo-v5.schema"


def test_packaged_schema_equals_repository_schema():
    """The copy shipped as package data is byte for byte the repository's
    schema (after editing proto/schema/neo-v5.schema, run `make py-schema`)."""
    packaged = PY_DIR / "neolinkpy" / schema.PACKAGED_SCHEMA
    assert REPO_SCHEMA.is_file(), REPO_SCHEMA
    assert packaged.read_bytes() == REPO_SCHEMA.read_bytes(), (
        f"{packaged} differs from {REPO_SCHEMA}: run `make py-schema`")


def test_kinds_and_answers():
    assert catalog.Ping.kind == "request" and catalog.Ping.answer is catalog.Pong
    assert catalog.Pong.kind == "answer" and catalog.Pong.is_answer
    assert catalog.SetClusterState.kind == "errreq"
    assert catalog.SetClusterState.answer is catalog.Error
    assert catalog.CloseClient.kind == "notify" and catalog.CloseClient.answer is None
    for cls in catalog.MESSAGES.values():
        if cls.kind == "request":
            assert cls.answer.msg_code == cls.msg_code | 0x8000


def test_enums():
    assert [(n, e.__name__) for n, e in catalog.ENUMS.items()] == [
        ("CellStates", "CellStates"), ("ClusterStates", "ClusterStates"),
        ("ErrorCodes", "ErrorCodes"), ("NodeStates", "NodeStates"), ("NodeTypes", "NodeTypes")]
    assert catalog.NodeTypes.CLIENT == 2
    assert catalog.ErrorCodes.PROTOCOL_ERROR == 6
    assert catalog.ErrorCodes.UNDO_PACK_ERROR == 13
    assert catalog.ClusterStates.STOPPING_BACKUP == 6


def test_structs_and_fields():
    addr = catalog.Address("h", 1)
    assert addr.host == "h" and addr.port == 1
    assert catalog.AnswerObject.fields == ("oid", "serial", "next_serial", "compression",
                                          "checksum", "data", "data_serial")
    m = catalog.RequestIdentification(catalog.NodeTypes.STORAGE, 7, ("127.0.0.1", 5000),
                                      "test", 1.5, {"new_nid": []})
    assert m.address == catalog.Address("127.0.0.1", 5000)
    assert type(m.address) is catalog.Address
    assert m.extra == {"new_nid": ()}


def test_message_constructor():
    m = catalog.AskObject(oid=1, before=5)
    assert (m.oid, m.at, m.before) == (1, None, 5)
    assert m == catalog.AskObject(1, None, 5)
    assert m != catalog.AskObject(1, None, 6)
    assert m != catalog.AskObjectHistory(1, 0, 0)
    assert repr(m) == "AskObject(oid=1, at=None, before=5)"
    assert catalog.AskObject(b"\0\0\0\0\0\0\0\x09").oid == 9
    err = catalog.Error(code=6, message="x")
    assert err.code is catalog.ErrorCodes.PROTOCOL_ERROR
    assert catalog.Error.msg_code == 0x8000
    assert catalog.Error(99, "future code").code == 99
    assert "...(1000 bytes)" in repr(catalog.AddObject(1, 2, 0, b"", b"x" * 1000, None))
    with pytest.raises(TypeError, match="missing required argument 'oid'"):
        catalog.AskObject()
    with pytest.raises(TypeError, match="takes 3 arguments but 4"):
        catalog.AskObject(1, 2, 3, 4)
    with pytest.raises(TypeError, match="unexpected keyword argument 'bad'"):
        catalog.AskObject(1, bad=2)
    with pytest.raises(TypeError, match="multiple values"):
        catalog.AskObject(1, oid=2)


@pytest.mark.parametrize("make, where", [
    (lambda: catalog.AskObject(oid=-1), "AskObject.oid"),
    (lambda: catalog.AskObject(oid=b"short"), "AskObject.oid"),
    (lambda: catalog.AskObject(oid="1"), "AskObject.oid"),
    (lambda: catalog.AskNodeList(node_type=9), "AskNodeList.node_type"),
    (lambda: catalog.AskNodeList(node_type=catalog.NodeStates.DOWN), "AskNodeList.node_type"),
    (lambda: catalog.StartOperation(backup=1), "StartOperation.backup"),
    (lambda: catalog.AskNewOIDs(num_oids=True), "AskNewOIDs.num_oids"),
    (lambda: catalog.AskNewOIDs(num_oids=1 << 32), "AskNewOIDs.num_oids"),
    (lambda: catalog.AnswerPrimary(primary_uuid=1 << 31), "AnswerPrimary.primary_uuid"),
    (lambda: catalog.NotifyUpstreamAdmin(address=("h", 70000)), "NotifyUpstreamAdmin.address.port"),
    (lambda: catalog.NotifyUpstreamAdmin(address=("h",)), "NotifyUpstreamAdmin.address"),
    (lambda: catalog.NotifyUpstreamAdmin(address=(b"h", 1)), "NotifyUpstreamAdmin.address.host"),
    (lambda: catalog.AnswerNodeList([(0, None, None, 9, None)]), "AnswerNodeList.node_list[0].state"),
    (lambda: catalog.AnswerLockedTransactions({1: "x"}), "AnswerLockedTransactions.tid_dict[1]"),
    (lambda: catalog.AnswerLockedTransactions({1: 1, b"\0" * 7 + b"\1": 2}),
     "AnswerLockedTransactions.tid_dict"),
    (lambda: catalog.AskUnfinishedTransactions(offset_list="abc"), "AskUnfinishedTransactions"),
    (lambda: catalog.NotifyMonitorInformation({"k": object()}), "NotifyMonitorInformation.info"),
])
def test_constructor_rejects_bad_values(make, where):
    with pytest.raises(EncodeError) as info:
        make()
    assert str(info.value).startswith(where), str(info.value)


def test_public_api_reexports_catalog():
    for name in ("Ping", "AskObject", "Error", "NodeTypes", "Address", "dial", "listen",
                 "NeoError", "LinkClosedError"):
        assert name in neolinkpy.__all__ and hasattr(neolinkpy, name)


def test_schema_type_parser():
    t = schema.parse_type("{tid:[oid]}")
    assert t == schema.MapOf(schema.Named("tid"), schema.ListOf(schema.Named("oid")))
    assert str(schema.parse_type("?[{u32:?Address}]")) == "?[{u32:?Address}]"
    assert schema.parse_type("int/ErrorCodes") == schema.PlainEnum("ErrorCodes")
    for bad in ("[oid", "{oid}", "?", "oid]", "x/ErrorCodes", "{oid:bin"):
        with pytest.raises(SchemaError):
            schema.parse_type(bad)


@pytest.mark.parametrize("text, message", [
    ("1 request Ping\n", "has no answer"),
    ("0x8000 error Error code:int\n0x8002 answer Pong\n", "has no request"),
    ("0x8000 error Error code:nosuch\n", "unknown type nosuch"),
    ("0x8000 error Error\n0x8003 notify X\n", "kind notify does not fit"),
    ("0x8000 error Error\n1 notify X a:int a:int\n", "field a twice"),
    ("0x8000 error Error\n1 notify X a:{[int]:int}\n", "not a scalar type"),
    ("enum E ext=300 : A\n0x8000 error Error\n", "bad or duplicate ext"),
    ("1 bogus X\n", "unknown packet kind"),
    ("struct S a\n", "bad field"),
])
def test_schema_errors(text, message):
    with pytest.raises(SchemaError, match=message):
        schema.parse_schema(text, "test.schema")


def test_schema_env_override(tmp_path):
    """NEOLINK_SCHEMA points the library at another schema file."""
    path = tmp_path / "mini.schema"
    path.write_text(textwrap.dedent("""\
        enum ErrorCodes ext=2 : ACK DENIED NOT_READY OID_NOT_FOUND TID_NOT_FOUND OID_DOES_NOT_EXIST PROTOCOL_ERROR
        enum NodeTypes ext=4 : MASTER STORAGE CLIENT ADMIN
        0x8000 error   Error   code:int/ErrorCodes message:text
        2      request Ping
        0x8002 answer  Pong
        7      notify  Hello   who:text
    """))
    code = ("from neolinkpy import catalog; "
            "print(len(catalog.PACKETS), catalog.Hello(who='x').encode_args().hex())")
    env = python_env()
    env["NEOLINK_SCHEMA"] = str(path)
    out = subprocess.run([PYTHON, "-c", code], env=env, capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["4", "91c40178"]
    env["NEOLINK_SCHEMA"] = str(tmp_path / "missing.schema")
    out = subprocess.run([PYTHON, "-c", "import neolinkpy"], env=env, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode != 0 and "SchemaError: cannot read schema" in out.stderr
