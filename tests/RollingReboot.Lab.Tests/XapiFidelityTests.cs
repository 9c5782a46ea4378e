using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace RollingReboot.Lab.Tests;

/// <summary>
/// The lab against what xapi-project/xen-api's source does (docs/lab.md, "Fidelity: XAPI"), over hand-written requests:
/// HTTP routing and answers, event.from's errors and tokens, error parameter layouts, members in emergency mode.
/// </summary>
public sealed partial class XapiFidelityTests
{
    private const string ThreeHosts = """
        { "migration": { "setupSeconds": 2, "streamMBps": 1 },
          "pool": { "toolstackStartSeconds": 2 },
          "hosts": [ { "name": "m", "memoryMiB": 65536, "rebootSeconds": 1200 }, { "name": "a", "memoryMiB": 65536, "rebootSeconds": 60 },
                     { "name": "b", "memoryMiB": 16384, "rebootSeconds": 10 } ],
          "srs": [ { "name": "nfs", "shared": true }, { "name": "local-b", "shared": false, "host": "b" }, { "name": "iso", "shared": true } ],
          "vms": [ { "name": "big", "host": "b", "memoryMiB": 8192 }, { "name": "small", "host": "b", "memoryMiB": 1024 } ] }
        """;

    private static string XmlCall(string method, params string[] parameters) =>
        new XDocument(new XElement("methodCall", new XElement("methodName", method),
            new XElement("params", parameters.Select(p => new XElement("param", new XElement("value", new XElement("string", p))))))).ToString();

    private static XElement Member(XElement value, string name) =>
        value.Element("struct")!.Elements("member").Single(m => m.Element("name")!.Value == name).Element("value")!;

    /// <summary>The Status struct of an XML-RPC reply, as (status, value or error description).</summary>
    private static (string Status, XElement Value) XmlReply(string body)
    {
        var value = XDocument.Parse(body).Root!.Element("params")!.Element("param")!.Element("value")!;
        var status = Member(value, "Status").Value;
        return (status, Member(value, status == "Success" ? "Value" : "ErrorDescription"));
    }

    private static void Is(RawXapiError e, string code, params string[] parameters)
    {
        Assert.Equal(code, e.Code);
        Assert.Equal(parameters, e.Parameters);
    }

    private static List<string> Description(XElement errorDescription) =>
        errorDescription.Element("array")!.Element("data")!.Elements("value").Select(v => v.Value).ToList();

    // ---- 1. the wire ------------------------------------------------------------------------------------------------

    [Theory]
    [InlineData("/")]
    [InlineData("/RPC2")]
    [InlineData("/RPC2/x")]
    [InlineData("/xmlrpc")]
    [InlineData("/json")]
    [InlineData("/anything/at/all")]
    public async Task Post_AnyPathNotUnderJsonrpc_IsXmlRpc_WhateverTheContentType(string path)
    {
        await using var lab = await Labs.StartAsync(ThreeHosts);
        using var raw = new RawXapi(lab);

        var (status, contentType, body) = await raw.PostAsync(Labs.Address(lab, "m"), path, XmlCall("session.login_with_password", raw.User, raw.Password), "application/json");

        Assert.Equal((HttpStatusCode.OK, "text/xml"), (status, contentType));
        var (result, value) = XmlReply(body);
        Assert.Equal("Success", result);
        Assert.StartsWith("OpaqueRef:", value.Value, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/jsonrpc")]
    [InlineData("/jsonrpc/v2")]
    [InlineData("/jsonrpcx")]
    public async Task Post_UnderJsonrpc_IsJsonRpc_WhateverTheContentType(string path)
    {
        await using var lab = await Labs.StartAsync(ThreeHosts);
        using var raw = new RawXapi(lab);
        var request = raw.Request("session.login_with_password", [raw.User, raw.Password]).ToJsonString();

        var (status, contentType, body) = await raw.PostAsync(Labs.Address(lab, "m"), path, request, "text/plain");

        Assert.Equal((HttpStatusCode.OK, "application/json"), (status, contentType));
        Assert.StartsWith("OpaqueRef:", JsonNode.Parse(body)!["result"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/cli")]
    [InlineData("/services/xenops")]
    [InlineData("/remote_db_access")]
    public async Task Post_ToAnotherXapiHandler_IsNotTheApi(string path)
    {
        await using var lab = await Labs.StartAsync(ThreeHosts);
        using var raw = new RawXapi(lab);

        var (status, _, body) = await raw.PostAsync(Labs.Address(lab, "m"), path, XmlCall("session.login_with_password", raw.User, raw.Password), "text/xml");

        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.DoesNotContain("methodResponse", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OtherHttpMethods_AnswerAsXapisWebServer()
    {
        await using var lab = await Labs.StartAsync(ThreeHosts);
        using var http = Labs.PinnedHttp(lab);
        var m = Labs.Address(lab, "m");

        using var root = await http.GetAsync(Labs.Url(lab, m, "/"));
        Assert.Equal(HttpStatusCode.OK, root.StatusCode);
        Assert.Equal("text/html", root.Content.Headers.ContentType?.MediaType);

        using var missing = await http.GetAsync(Labs.Url(lab, m, "/no/such/file"));
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Contains("<address>Xapi Server</address>", await missing.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        using var preflight = await http.SendAsync(new HttpRequestMessage(HttpMethod.Options, Labs.Url(lab, m, "/jsonrpc")));
        Assert.Equal(HttpStatusCode.OK, preflight.StatusCode);
        Assert.Equal("*", preflight.Headers.GetValues("Access-Control-Allow-Origin").Single());

        using var put = await http.PutAsync(Labs.Url(lab, m, "/"), new StringContent("x"));
        Assert.Equal(HttpStatusCode.Forbidden, put.StatusCode);
        Assert.Contains("HTTP 403 forbidden", await put.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        using var delete = await http.DeleteAsync(Labs.Url(lab, m, "/jsonrpc"));
        Assert.Equal(HttpStatusCode.NotImplemented, delete.StatusCode);
        Assert.Contains("Unknown DELETE not supported", await delete.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"method":"system.listMethods","id":1}""")] // 1.0 needs params
    [InlineData("""{"jsonrpc":"1.0","method":"system.listMethods","params":[],"id":1}""")]
    [InlineData("""{"jsonrpc":"2.0","method":"system.listMethods","params":"x","id":1}""")]
    [InlineData("""{"jsonrpc":"2.0","method":"system.listMethods","params":[],"id":1.5}""")]
    public async Task JsonRpc_RequestOcamlRpcRefuses_IsXapisHtml500(string body)
    {
        await using var lab = await Labs.StartAsync(ThreeHosts);
        using var raw = new RawXapi(lab);

        var (status, contentType, page) = await raw.PostAsync(Labs.Address(lab, "m"), "/jsonrpc", body);

        Assert.Equal((HttpStatusCode.InternalServerError, "text/html"), (status, contentType));
        Assert.StartsWith("<html><body><h1>HTTP 500 internal server error</h1>", page, StringComparison.Ordinal);
        Assert.Contains("Malformed_method_request", page, StringComparison.Ordinal);
    }

    [Fact]
    public async Task JsonRpc20_ParamsLeftOut_AreNoParams()
    {
        await using var lab = await Labs.StartAsync(ThreeHosts);
        using var raw = new RawXapi(lab);

        var answer = await raw.SendAsync(Labs.Address(lab, "m"), new JsonObject { ["jsonrpc"] = "2.0", ["method"] = "system.listMethods", ["id"] = "x" });

        Assert.Contains("VM.pool_migrate", answer["result"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.Equal("x", answer["id"]!.GetValue<string>());
    }

    [Fact]
    public async Task UnknownMethod_IsMessageMethodUnknown_WithTheNameWithoutAsync_AfterTheSessionCheck()
    {
        await using var lab = await Labs.StartAsync(ThreeHosts);
        using var raw = new RawXapi(lab);
        var m = Labs.Address(lab, "m");
        var session = await raw.LoginAsync(m);

        var unknown = await raw.FailsAsync(m, "VM.frobnicate", session, "OpaqueRef:x");
        Is(unknown, "MESSAGE_METHOD_UNKNOWN", "VM.frobnicate");
        Assert.Equal(1, unknown.Response["error"]!["code"]!.GetValue<int>());

        var asyncUnknown = await raw.FailsAsync(m, "Async.VM.frobnicate", session);
        Assert.Equal(["VM.frobnicate"], asyncUnknown.Parameters);

        // No parameters: nothing to check a session against.
        var bare = await raw.FailsAsync(m, "no.such_thing");
        Is(bare, "MESSAGE_METHOD_UNKNOWN", "no.such_thing");

        // With a first parameter, that is the session, checked first.
        Assert.Equal("SESSION_INVALID", (await raw.FailsAsync(m, "no.such_thing", "OpaqueRef:not-a-session")).Code);

        // A message without an async form: server_helpers.ml do_dispatch answers a "Fault".
        foreach (var method in new[] { "event.from", "task.destroy", "host.get_record" })
        {
            var fault = await raw.FailsAsync(m, "Async." + method, session, "x", "y", "z");
            Is(fault, "Fault", $"No async mode for this operation (rpc: {method})");
        }

        var (_, _, body) = await raw.PostAsync(m, "/", XmlCall("VM.frobnicate", session), "text/xml");
        var (status, description) = XmlReply(body);
        Assert.Equal("Failure", status);
        Assert.Equal(["MESSAGE_METHOD_UNKNOWN", "VM.frobnicate"], Description(description));
    }

    [Theory]
    [InlineData("24.19.0", "host.disable", 2, "1")]
    [InlineData("24.19.0", "VM.pool_migrate", 2, "3")]
    [InlineData("25.31.0", "VM.pool_migrate", 4, "3")]
    public async Task ParameterCountMismatch_IsMandatoryAndReceived_WithoutTheSession(string version, string method, int sent, string mandatory)
    {
        await using var lab = await Labs.StartAsync(ThreeHosts.Replace("\"pool\": {", $"\"pool\": {{ \"xapiVersion\": \"{version}\",", StringComparison.Ordinal));
        using var raw = new RawXapi(lab);
        var m = Labs.Address(lab, "m");
        var session = await raw.LoginAsync(m);
        var host = await raw.RefAsync(m, session, "host", "b");

        var e = await raw.FailsAsync(m, method, [session, .. Enumerable.Range(0, sent).Select(_ => (JsonNode?)host)]);

        Is(e, "MESSAGE_PARAMETER_COUNT_MISMATCH", method, mandatory, sent.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task HostDisable_FromXapi25_31_TakesAutoEnable()
    {
        await using var lab = await Labs.StartAsync(ThreeHosts.Replace("\"pool\": {", "\"pool\": { \"xapiVersion\": \"25.31.0\",", StringComparison.Ordinal));
        using var raw = new RawXapi(lab);
        var m = Labs.Address(lab, "m");
        var session = await raw.LoginAsync(m);
        var a = await raw.RefAsync(m, session, "host", "a");

        await raw.CallAsync(m, "host.disable", session, a, true);

        Assert.False(Audit.Host(lab.AuditJson(), "a")["enabled"]!.GetValue<bool>());
    }

    [Fact]
    public async Task HostBeforeJsonRpc_AnswersUnparseableXmlWithAFault_Http200()
    {
        await using var lab = await Labs.StartAsync(ThreeHosts.Replace("\"pool\": {", "\"pool\": { \"jsonRpc\": false, \"xapiVersion\": \"1.8.0\",", StringComparison.Ordinal));
        using var raw = new RawXapi(lab);
        var m = Labs.Address(lab, "m");

        foreach (var (path, body) in new[] { ("/jsonrpc", raw.Request("system.listMethods", []).ToJsonString()), ("/", "<methodCall><methodName>x") })
        {
            var (status, contentType, answer) = await raw.PostAsync(m, path, body);
            Assert.Equal((HttpStatusCode.OK, "text/xml"), (status, contentType));
            var fault = XDocument.Parse(answer).Root!.Element("fault")!.Element("value")!;
            Assert.Equal("1", Member(fault, "faultCode").Element("i4")!.Value);
            Assert.Equal("Failed to parse supplied XML", Member(fault, "faultString").Value);
        }
    }

    // ---- 2. event.from ----------------------------------------------------------------------------------------------

    [Theory]
    [InlineData("garbage")]
    [InlineData("12")]
    [InlineData("1,2,3")]
    [InlineData("a,0")]
    public async Task EventFrom_TokenItCannotParse_IsEventFromTokenParseFailure(string token)
    {
        await using var lab = await Labs.StartAsync(ThreeHosts);
        using var raw = new RawXapi(lab);
        var m = Labs.Address(lab, "m");
        var session = await raw.LoginAsync(m);

        var e = await raw.FailsAsync(m, "event.from", session, new JsonArray("host"), token, 1.0);

        Is(e, "EVENT_FROM_TOKEN_PARSE_FAILURE", token);
    }

    [GeneratedRegex("^[0-9]{20},[0-9]{20}$")]
    private static partial Regex TokenShape();

    [Fact]
    public async Task EventFrom_UnknownClass_IsNoError_ItWaitsOutTheTimeoutAndAnswersNothing()
    {
        await using var lab = await Labs.StartAsync(ThreeHosts, 20);
        using var raw = new RawXapi(lab);
        var m = Labs.Address(lab, "m");
        var session = await raw.LoginAsync(m);
        var before = Audit.Now(lab.AuditJson());

        var batch = (await raw.CallAsync(m, "event.from", session, new JsonArray("no_such_class", "alsoNothing/OpaqueRef:x"), "", 20.0))!;

        Assert.True(Audit.Now(lab.AuditJson()) - before >= 20, "event.from answered before its timeout");
        Assert.Empty(batch["events"]!.AsArray());
        Assert.Matches(TokenShape(), batch["token"]!.GetValue<string>());
        // Every table with the count of its rows, whatever was subscribed.
        Assert.Equal(3, batch["valid_ref_counts"]!["host"]!.GetValue<int>());
        Assert.Equal(2 + 3, batch["valid_ref_counts"]!["vm"]!.GetValue<int>());
    }

    [Fact]
    public async Task EventFrom_ObjectMadeAndDestroyedSinceTheToken_IsNotReported_OneDestroyedIsDelWithoutSnapshot()
    {
        await using var lab = await Labs.StartAsync(ThreeHosts);
        using var raw = new RawXapi(lab);
        var m = Labs.Address(lab, "m");
        var session = await raw.LoginAsync(m);
        var host = await raw.RefAsync(m, session, "host", "a");
        var older = (await raw.CallAsync(m, "Async.host.compute_free_memory", session, host))!.GetValue<string>();
        await raw.WaitTaskAsync(m, session, older);
        var token = (await raw.CallAsync(m, "event.from", session, new JsonArray("task"), "", 0.0))!["token"]!.GetValue<string>();

        var brief = (await raw.CallAsync(m, "Async.host.compute_free_memory", session, host))!.GetValue<string>();
        await raw.WaitTaskAsync(m, session, brief);
        await raw.CallAsync(m, "task.destroy", session, brief);
        await raw.CallAsync(m, "task.destroy", session, older);
        var batch = (await raw.CallAsync(m, "event.from", session, new JsonArray("task"), token, 5.0))!;

        var e = Assert.Single(batch["events"]!.AsArray())!.AsObject();
        Assert.Equal((older, "del"), (e["ref"]!.GetValue<string>(), e["operation"]!.GetValue<string>()));
        Assert.False(e.ContainsKey("snapshot"));
        Assert.Matches(TokenShape(), batch["token"]!.GetValue<string>());
    }

    // ---- 3. error parameter layouts ---------------------------------------------------------------------------------

    [Fact]
    public async Task Errors_HaveTheLayoutsXapiRaisesThemWith()
    {
        await using var lab = await Labs.StartAsync(ThreeHosts.Replace("\"vms\"", """ "faults": [ { "type": "hostDoesNotReturn", "host": "a" } ], "vms" """, StringComparison.Ordinal));
        using var raw = new RawXapi(lab);
        var m = Labs.Address(lab, "m");
        var s = await raw.LoginAsync(m);
        var (hm, ha) = (await raw.RefAsync(m, s, "host", "m"), await raw.RefAsync(m, s, "host", "a"));
        var (big, small) = (await raw.RefAsync(m, s, "VM", "big"), await raw.RefAsync(m, s, "VM", "small"));

        // A busy VM: ["VM"; ref; operation; task] (xapi_vm_lifecycle.ml report_concurrent_operations_error).
        var task = (await raw.CallAsync(m, "Async.VM.pool_migrate", s, small, hm, new JsonObject()))!.GetValue<string>();
        Is(await raw.FailsAsync(m, "VM.pool_migrate", s, small, ha, new JsonObject()), "OTHER_OPERATION_IN_PROGRESS", "VM", small, "pool_migrate", task);
        await raw.CallAsync(m, "task.cancel", s, task);
        Assert.Equal("cancelled", (await raw.WaitTaskAsync(m, s, task))["status"]!.GetValue<string>());

        // A control domain (xapi_vm_lifecycle.ml check_operation_error).
        var dom0 = (await raw.CallAsync(m, "host.get_control_domain", s, hm))!.GetValue<string>();
        Is(await raw.FailsAsync(m, "VM.pool_migrate", s, dom0, ha, new JsonObject()), "OPERATION_NOT_ALLOWED", "This operation is not allowed on a control domain");

        // A rebooting host: recorded as `shutdown` (xapi_host.ml reboot): ["host"; ref; "shutdown"; task].
        await raw.CallAsync(m, "host.disable", s, ha);
        await raw.CallAsync(m, "host.reboot", s, ha);
        var rebooting = await raw.FailsAsync(m, "host.reboot", s, ha);
        Assert.Equal("OTHER_OPERATION_IN_PROGRESS", rebooting.Code);
        Assert.Equal(["host", ha, "shutdown"], rebooting.Parameters.Take(3));
        Assert.StartsWith("OpaqueRef:", rebooting.Parameters[3], StringComparison.Ordinal);
        Assert.Equal(4, rebooting.Parameters.Count);

        // A host that is down: HOST_NOT_LIVE without parameters (xapi_vm_helpers.ml assert_host_is_live).
        await Wait.ForEventAsync(lab, "host.down", "a");
        Is(await raw.FailsAsync(m, "VM.assert_can_boot_here", s, big, ha), "HOST_NOT_LIVE");
        Is(await raw.FailsAsync(m, "host.reboot", s, ha), "HOST_OFFLINE", ha);

        // Refused login: [uname; PAM's message] (xapi_session.ml do_local_auth).
        Is(await raw.FailsAsync(m, "session.login_with_password", raw.User, "wrong"), "SESSION_AUTHENTICATION_FAILED", raw.User, "Authentication failure");
    }

    [Fact]
    public async Task EvacuationPlan_NamesTheVm_InEveryError()
    {
        await using var lab = await Labs.StartAsync("""
            { "hosts": [ { "name": "m", "memoryMiB": 65536 }, { "name": "x", "memoryMiB": 12288, "dom0MemoryMiB": 2048 } ],
              "srs": [ { "name": "nfs", "shared": true } ],
              "vms": [ { "name": "big", "host": "m", "memoryMiB": 16384 }, { "name": "fits", "host": "m", "memoryMiB": 1024 } ] }
            """);
        using var raw = new RawXapi(lab);
        var m = Labs.Address(lab, "m");
        var s = await raw.LoginAsync(m);
        var (hm, hx) = (await raw.RefAsync(m, s, "host", "m"), await raw.RefAsync(m, s, "host", "x"));
        var big = await raw.RefAsync(m, s, "VM", "big");

        // One VM on one host: ["needed"; "available"] in bytes (xapi_vm_helpers.ml, the memory check).
        var tooBig = await raw.FailsAsync(m, "VM.assert_can_boot_here", s, big, hx);
        Assert.Equal("HOST_NOT_ENOUGH_FREE_MEMORY", tooBig.Code);
        Assert.Equal([(16384L + 128) << 20, (12288L - 2048) << 20], tooBig.Parameters.Select(p => long.Parse(p, System.Globalization.CultureInfo.InvariantCulture)));

        // Memory: HOST_NOT_ENOUGH_FREE_MEMORY [vm] in the plan (xapi_host.ml compute_evacuation_plan_no_wlb).
        var plan = (JsonObject)(await raw.CallAsync(m, "host.get_vms_which_prevent_evacuation", s, hm))!;
        Assert.Equal(["HOST_NOT_ENOUGH_FREE_MEMORY", big], Assert.Single(plan).Value!.AsArray().Select(n => n!.GetValue<string>()));
        Is(await raw.FailsAsync(m, "host.evacuate", s, hm), "HOST_NOT_ENOUGH_FREE_MEMORY", big);
        Is(await raw.FailsAsync(m, "host.assert_can_evacuate", s, hm), "CANNOT_EVACUATE_HOST", "HOST_NOT_ENOUGH_FREE_MEMORY," + big);

        // No other enabled host: NO_HOSTS_AVAILABLE [vm] for every VM.
        await raw.CallAsync(m, "host.disable", s, hx);
        plan = (JsonObject)(await raw.CallAsync(m, "host.get_vms_which_prevent_evacuation", s, hm))!;
        Assert.Equal(2, plan.Count);
        Assert.All(plan, kv => Assert.Equal(["NO_HOSTS_AVAILABLE", kv.Key], kv.Value!.AsArray().Select(n => n!.GetValue<string>())));
        Assert.Equal("NO_HOSTS_AVAILABLE", (await raw.FailsAsync(m, "host.evacuate", s, hm)).Code);
    }

    [Fact]
    public async Task EnableHa_UsesTheFirstSrOnly_AndRefusesOnesThatCannotHoldAStatefile()
    {
        await using var lab = await Labs.StartAsync(ThreeHosts);
        using var raw = new RawXapi(lab);
        var m = Labs.Address(lab, "m");
        var s = await raw.LoginAsync(m);
        var (nfs, local, iso) = (await raw.RefAsync(m, s, "SR", "nfs"), await raw.RefAsync(m, s, "SR", "local-b"), await raw.RefAsync(m, s, "SR", "iso"));

        Is(await raw.FailsAsync(m, "pool.enable_ha", s, new JsonArray(local, nfs), new JsonObject()), "SR_NO_PBDS", local);
        Is(await raw.FailsAsync(m, "pool.enable_ha", s, new JsonArray(iso), new JsonObject()), "SR_OPERATION_NOT_SUPPORTED", iso);

        await raw.CallAsync(m, "pool.enable_ha", s, new JsonArray(nfs, local), new JsonObject { ["timeout"] = "180" });
        var statefile = Assert.Single((await raw.CallAsync(m, "pool.get_ha_statefiles", s, await raw.RefAsync(m, s, "pool", "CLUSTER-1")))!.AsArray())!.GetValue<string>();
        Assert.Equal(nfs, (await raw.CallAsync(m, "VDI.get_SR", s, statefile))!.GetValue<string>());
    }

    [Fact]
    public async Task EnableHa_NoSrThatCanHoldAStatefile_IsCannotCreateStateFile_WithoutParameters()
    {
        await using var lab = await Labs.StartAsync("""{ "hosts": [ { "name": "m" } ], "srs": [ { "name": "local", "shared": false, "host": "m" } ] }""");
        using var raw = new RawXapi(lab);
        var m = Labs.Address(lab, "m");
        var s = await raw.LoginAsync(m);

        Is(await raw.FailsAsync(m, "pool.enable_ha", s, new JsonArray(), new JsonObject()), "CANNOT_CREATE_STATE_FILE");
    }

    // ---- 4. members in emergency mode -------------------------------------------------------------------------------

    [Fact]
    public async Task MemberRestartedWhileTheMasterIsDown_AnswersInternalErrorBeforeDispatch_UntilTheMasterIsBack()
    {
        await using var lab = await Labs.StartAsync(ThreeHosts, 100);
        using var raw = new RawXapi(lab);
        var (m, a, b) = (Labs.Address(lab, "m"), Labs.Address(lab, "a"), Labs.Address(lab, "b"));
        var s = await raw.LoginAsync(m);
        var (hm, ha) = (await raw.RefAsync(m, s, "host", "m"), await raw.RefAsync(m, s, "host", "a"));
        // a is down 60 s, m 1200 s: a restarts while its master is away.
        foreach (var h in new[] { ha, hm })
        {
            await raw.CallAsync(m, "host.disable", s, h);
            await raw.CallAsync(m, "host.reboot", s, h);
        }

        // a is back while m (300 s) is still down: its Pool.hello fails, it stays in emergency mode.
        await Wait.ForEventAsync(lab, "host.emergencyMode", "a");
        await Wait.UntilAsync(() => raw.AnswersAsync(a), "host a's XAPI to listen again");
        var json = await raw.SendAsync(a, raw.Request("session.login_with_password", [raw.User, raw.Password]));
        Assert.Equal("2.0", json["jsonrpc"]!.GetValue<string>());
        Assert.Equal(0, json["id"]!.GetValue<int>());
        var error = json["error"]!.AsArray().Select(n => n!.GetValue<string>()).ToList();
        Assert.Equal("INTERNAL_ERROR", error[0]);
        Assert.Equal(2, error.Count);
        var (_, _, xml) = await raw.PostAsync(a, "/", XmlCall("session.login_with_password", raw.User, raw.Password), "text/xml");

        Assert.Equal("INTERNAL_ERROR", Description(XmlReply(xml).Value)[0]);
        // b never restarted: it still names the master.
        Is(await raw.FailsAsync(b, "session.login_with_password", raw.User, raw.Password), "HOST_IS_SLAVE", m);

        await Wait.ForEventAsync(lab, "host.toolstackReady", "m", timeout: TimeSpan.FromSeconds(60));
        await Wait.ForEventAsync(lab, "host.toolstackReady", "a", timeout: TimeSpan.FromSeconds(60));
        Assert.Equal("HOST_IS_SLAVE", (await raw.FailsAsync(a, "session.login_with_password", raw.User, raw.Password)).Code);
        var audit = lab.AuditJson();
        Assert.True(Audit.T(Audit.Events(audit, "host.toolstackReady", "a").Single()) >= Audit.T(Audit.Events(audit, "host.toolstackReady", "m").Single()));
    }

    [Theory]
    [InlineData("24.19.0", true)]
    [InlineData("1.250.0", false)]
    public async Task MemberEmergencyFault_TheMemberAnswersTheGivenError_ForItsDuration(string version, bool v2Envelope)
    {
        await using var lab = await Labs.StartAsync(ThreeHosts.Replace("\"pool\": {", $"\"pool\": {{ \"xapiVersion\": \"{version}\",", StringComparison.Ordinal).Replace("\"vms\"", """
            "faults": [ { "type": "memberEmergency", "host": "b", "atSeconds": 0, "durationSeconds": 300, "error": ["HOST_MASTER_CANNOT_TALK_BACK", "127.0.0.4"] } ],
            "vms"
            """, StringComparison.Ordinal), 50);
        using var raw = new RawXapi(lab);
        var (m, b) = (Labs.Address(lab, "m"), Labs.Address(lab, "b"));
        var s = await raw.LoginAsync(m);
        var pool = await raw.RefAsync(m, s, "pool", "CLUSTER-1");
        await raw.CallAsync(m, "pool.add_to_other_config", s, pool, "first", "change");

        await Wait.ForEventAsync(lab, "host.emergencyMode", "b");
        var answer = await raw.SendAsync(b, raw.Request("session.login_with_password", [raw.User, raw.Password], v2: false));
        Assert.Equal(["HOST_MASTER_CANNOT_TALK_BACK", "127.0.0.4"], answer["error"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.Equal(0, answer["id"]!.GetValue<int>());
        // Since 24.18.0 the 2.0 envelope whatever the request said (api_server.ml jsoncallback, CA-381119); before, 1.0's.
        Assert.Equal(v2Envelope, answer.ContainsKey("jsonrpc"));
        Assert.Equal(!v2Envelope, answer.ContainsKey("result"));
        // Even system.listMethods: only datamodel.ml emergency_calls are answered.
        Assert.Equal("HOST_MASTER_CANNOT_TALK_BACK", (await raw.FailsAsync(b, "system.listMethods")).Code);

        await Wait.ForEventAsync(lab, "host.emergencyModeEnd", "b", timeout: TimeSpan.FromSeconds(30));
        Assert.Equal("HOST_IS_SLAVE", (await raw.FailsAsync(b, "session.login_with_password", raw.User, raw.Password)).Code);
    }
}
