using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using System.Xml.Linq;
using RollingReboot.Xapi;

namespace RollingReboot.Lab.Tests;

/// <summary>XAPI's wire as real hosts speak it: both JSON-RPC versions and error shapes, XML-RPC, events, getters.</summary>
public sealed class WireTests
{
    private const string TwoHosts = """
        { "migration": { "setupSeconds": 2 },
          "hosts": [ { "name": "m", "memoryMiB": 65536 }, { "name": "b", "memoryMiB": 65536, "rebootSeconds": 10 } ],
          "vms": [ { "name": "v1", "host": "m", "memoryMiB": 1024 }, { "name": "v2", "host": "b", "memoryMiB": 2048 } ] }
        """;

    [Fact]
    public async Task JsonRpc10_AnswersResultWithNullError_AndErrorsAsAnArray()
    {
        await using var lab = await Labs.StartAsync(TwoHosts);
        using var raw = new RawXapi(lab);
        var m = Labs.Address(lab, "m");

        var ok = await raw.SendAsync(m, raw.Request("session.login_with_password", [raw.User, raw.Password], v2: false));
        Assert.False(ok.ContainsKey("jsonrpc"));
        Assert.StartsWith("OpaqueRef:", ok["result"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.True(ok.ContainsKey("error"));
        Assert.Null(ok["error"]);

        var request = raw.Request("session.login_with_password", [raw.User, "wrong"], v2: false);
        request["id"] = "call-7";
        var failed = await raw.SendAsync(m, request);
        Assert.False(failed.ContainsKey("jsonrpc"));
        Assert.True(failed.ContainsKey("result"));
        Assert.Null(failed["result"]);
        Assert.Equal("SESSION_AUTHENTICATION_FAILED", failed["error"]!.AsArray()[0]!.GetValue<string>());
        Assert.Equal("call-7", failed["id"]!.GetValue<string>());
    }

    [Fact]
    public async Task JsonRpc20_ErrorIsAnObjectWithCodeMessageAndData()
    {
        await using var lab = await Labs.StartAsync(TwoHosts);
        using var raw = new RawXapi(lab);
        var b = Labs.Address(lab, "b");

        var request = raw.Request("session.login_with_password", [raw.User, raw.Password]);
        request["id"] = 42;
        var answer = await raw.SendAsync(b, request);

        Assert.Equal("2.0", answer["jsonrpc"]!.GetValue<string>());
        Assert.False(answer.ContainsKey("result"));
        Assert.Equal(42, answer["id"]!.GetValue<long>());
        var error = answer["error"]!.AsObject();
        Assert.Equal(System.Text.Json.JsonValueKind.Number, error["code"]!.GetValueKind());
        Assert.Equal("HOST_IS_SLAVE", error["message"]!.GetValue<string>());
        Assert.Equal([Labs.Address(lab, "m")], error["data"]!.AsArray().Select(d => d!.GetValue<string>()));
    }

    [Fact]
    public async Task HostStillBooting_RightAfterTheHostIsBack_ComesBeforeDispatchAsABareArrayWithIdZero()
    {
        await using var lab = await Labs.StartAsync(TwoHosts.Replace("\"migration\"", "\"pool\": { \"toolstackStartSeconds\": 1000 }, \"migration\"", StringComparison.Ordinal), 100);
        await using var client = Labs.Client(lab);
        using var raw = new RawXapi(lab);
        var b = (await client.CallAsync("host.get_by_name_label", ["b"]))!.AsArray()[0]!.GetValue<string>();
        var v2 = (await client.CallAsync("VM.get_by_name_label", ["v2"]))!.AsArray()[0]!.GetValue<string>();
        var m = (await client.CallAsync("host.get_by_name_label", ["m"]))!.AsArray()[0]!.GetValue<string>();
        await client.CallAsync("VM.pool_migrate", [v2, m, new Dictionary<string, string>()]);
        await client.CallAsync("host.disable", [b]);
        await client.CallAsync("host.reboot", [b]);
        var address = Labs.Address(lab, "b");

        await Wait.ForEventAsync(lab, "host.up", "b");
        await Wait.UntilAsync(() => raw.AnswersAsync(address), "host b's XAPI to listen again");
        var request = raw.Request("session.login_with_password", [raw.User, raw.Password]);
        request["id"] = 42;
        var answer = await raw.SendAsync(address, request);
        var old = await raw.SendAsync(address, raw.Request("system.listMethods", [], v2: false));

        Assert.Empty(Audit.Events(lab.AuditJson(), "host.toolstackReady", "b"));
        Assert.Equal("2.0", answer["jsonrpc"]!.GetValue<string>());
        Assert.Equal(["HOST_STILL_BOOTING"], answer["error"]!.AsArray().Select(e => e!.GetValue<string>()));
        Assert.Equal(0, answer["id"]!.GetValue<int>());
        Assert.False(answer.ContainsKey("result"));
        // jsoncallback writes a pre-dispatch error with ~version:V2 whatever the request's version was.
        Assert.Equal("2.0", old["jsonrpc"]!.GetValue<string>());
        Assert.Equal(["HOST_STILL_BOOTING"], old["error"]!.AsArray().Select(e => e!.GetValue<string>()));
        Assert.Equal(0, old["id"]!.GetValue<int>());
        Assert.False(old.ContainsKey("result"));
    }

    [Theory]
    [InlineData("/jsonrpc", "not json")]
    [InlineData("/jsonrpc", """{"jsonrpc":"2.0","method":"system.listMethods","params":[],"id":null}""")]
    [InlineData("/jsonrpc", """{"jsonrpc":"2.0","method":"system.listMethods","params":[]}""")]
    [InlineData("/jsonrpc", """{"jsonrpc":"2.0","params":[],"id":1}""")]
    [InlineData("/jsonrpc", """{"jsonrpc":"2.0","method":"system.listMethods","params":[],"id":{"a":1}}""")]
    [InlineData("/jsonrpc", """[1,2]""")]
    [InlineData("/", "<methodCall><methodName>system.listMethods")]
    [InlineData("/", "<notACall/>")]
    public async Task MalformedRequest_IsHttp500WithAnHtmlPage(string path, string body)
    {
        await using var lab = await Labs.StartAsync(TwoHosts);
        using var raw = new RawXapi(lab);

        var (status, contentType, page) = await raw.PostAsync(Labs.Address(lab, "m"), path, body, path == "/" ? "text/xml" : "application/json");

        Assert.Equal(HttpStatusCode.InternalServerError, status);
        Assert.Equal("text/html", contentType);
        Assert.Contains("<html>", page, StringComparison.Ordinal);
    }

    private static string XmlCall(string method, params string[] parameters) =>
        new XDocument(new XElement("methodCall", new XElement("methodName", method),
            new XElement("params", parameters.Select(p => new XElement("param", new XElement("value", new XElement("string", p))))))).ToString();

    private static XElement Member(XElement value, string name) =>
        value.Element("struct")!.Elements("member").Single(m => m.Element("name")!.Value == name).Element("value")!;

    private static XElement ResponseValue(string body)
    {
        var root = XDocument.Parse(body).Root!;
        Assert.Equal("methodResponse", root.Name.LocalName);
        return root.Element("params")!.Element("param")!.Element("value")!;
    }

    [Theory]
    [InlineData("/")]
    [InlineData("/RPC2")]
    public async Task XmlRpc_AnswersStatusStructs_WithInt64AsStrings(string path)
    {
        await using var lab = await Labs.StartAsync(TwoHosts);
        using var raw = new RawXapi(lab);
        var m = Labs.Address(lab, "m");

        var (status, contentType, body) = await raw.PostAsync(m, path, XmlCall("session.login_with_password", raw.User, raw.Password), "text/xml");
        Assert.Equal((HttpStatusCode.OK, "text/xml"), (status, contentType));
        var login = ResponseValue(body);
        Assert.Equal("Success", Member(login, "Status").Value);
        // Strings and int64 go untyped, <value>text</value>, as ocaml-rpc writes them for xapi.
        Assert.False(Member(login, "Value").HasElements);
        var session = Member(login, "Value").Value;
        Assert.StartsWith("OpaqueRef:", session, StringComparison.Ordinal);

        (_, _, body) = await raw.PostAsync(m, path, XmlCall("host_metrics.get_all_records", session), "text/xml");
        var records = Member(ResponseValue(body), "Value").Element("struct")!.Elements("member").Select(e => e.Element("value")!).ToList();
        Assert.Equal(2, records.Count);
        Assert.All(records, r =>
        {
            var total = Member(r, "memory_total");
            Assert.False(total.HasElements);
            Assert.Equal(65536L << 20, long.Parse(total.Value, CultureInfo.InvariantCulture));
            Assert.Equal("1", Member(r, "live").Element("boolean")!.Value);
        });

        (_, _, body) = await raw.PostAsync(m, path, XmlCall("session.login_with_password", raw.User, "wrong"), "text/xml");
        var failure = ResponseValue(body);
        Assert.Equal("Failure", Member(failure, "Status").Value);
        var description = Member(failure, "ErrorDescription").Element("array")!.Element("data")!.Elements("value").Select(v => v.Value).ToList();
        Assert.Equal("SESSION_AUTHENTICATION_FAILED", description[0]);
    }

    [Fact]
    public async Task PoolWithoutJsonRpc_AnswersJsonRpcWithTextXml_AndTheClientFallsBackToXmlRpc()
    {
        await using var lab = await Labs.StartAsync(TwoHosts.Replace("\"migration\"", "\"pool\": { \"jsonRpc\": false, \"xapiVersion\": \"1.250.0\" }, \"migration\"", StringComparison.Ordinal));
        using var raw = new RawXapi(lab);
        var m = Labs.Address(lab, "m");

        // No /jsonrpc before 1.9.0: the longest prefix is /json, whose XML parser refuses the JSON body with a fault.
        var (status, contentType, body) = await raw.PostAsync(m, "/jsonrpc", raw.Request("session.login_with_password", [raw.User, raw.Password]).ToJsonString());
        Assert.Equal((HttpStatusCode.OK, "text/xml"), (status, contentType));
        var fault = XDocument.Parse(body).Root!;
        Assert.Equal("methodResponse", fault.Name.LocalName);
        Assert.Equal("1", Member(fault.Element("fault")!.Element("value")!, "faultCode").Element("i4")!.Value);
        Assert.Equal("Failed to parse supplied XML", Member(fault.Element("fault")!.Element("value")!, "faultString").Value);

        await using var client = Labs.Client(lab, Labs.Address(lab, "b"));
        await client.LoginAsync();
        Assert.True(client.UsesXmlRpc);
        Assert.Equal(m, client.MasterUrl.Host);
        var hosts = (JsonObject)(await client.CallAsync("host_metrics.get_all_records", []))!;
        Assert.All(hosts, h => Assert.Equal((65536L << 20).ToString(CultureInfo.InvariantCulture), h.Value!["memory_total"]!.ToString()));
        Assert.Equal(4, ((JsonObject)(await client.CallAsync("VM.get_all_records", []))!).Count); // two guests, two control domains
    }

    [Fact]
    public async Task SystemListMethods_NeedsNoSession_OnMasterAndMembers()
    {
        await using var lab = await Labs.StartAsync(TwoHosts);
        using var raw = new RawXapi(lab);

        foreach (var host in new[] { "m", "b" })
        {
            var methods = (await raw.CallAsync(Labs.Address(lab, host), "system.listMethods"))!.AsArray().Select(x => x!.GetValue<string>()).ToHashSet();
            Assert.Empty(new HashSet<string>
            {
                "session.login_with_password", "session.logout", "event.from", "event.inject", "VM.pool_migrate", "Async.VM.pool_migrate",
                "host.evacuate", "Async.host.evacuate", "host.reboot", "host.get_record", "host.get_other_config", "VM.get_power_state",
                "pool.enable_ha", "pool.disable_ha", "task.destroy", "task.cancel", "host_metrics.get_live",
            }.Except(methods));
            foreach (var cls in new[] { "pool", "host", "host_metrics", "VM", "VM_metrics", "VM_guest_metrics", "SR", "VDI", "PBD", "VBD", "task", "network" })
            {
                Assert.Contains(cls + ".get_all_records", methods);
                Assert.Contains(cls + ".get_by_uuid", methods);
            }

            Assert.DoesNotContain("Async.event.from", methods);
            Assert.DoesNotContain("Async.task.destroy", methods);
        }
    }

    [Fact]
    public async Task EventFrom_EmptyToken_GivesEveryObject_ThenBlocksUntilAChange_AndGivesOnlyWhatChanged()
    {
        await using var lab = await Labs.StartAsync(TwoHosts, 100);
        await using var client = Labs.Client(lab);
        await using var watcher = Labs.Client(lab);

        var all = (await watcher.CallAsync("event.from", [new[] { "host" }, "", 30.0]))!;
        var events = all["events"]!.AsArray().Select(e => e!.AsObject()).ToList();
        Assert.Equal(["b", "m"], events.Select(e => e["snapshot"]!["name_label"]!.GetValue<string>()).Order());
        Assert.All(events, e => Assert.Equal(("host", "add"), (e["class"]!.GetValue<string>(), e["operation"]!.GetValue<string>())));
        Assert.Equal(2, all["valid_ref_counts"]!["host"]!.GetValue<int>());
        var token = all["token"]!.GetValue<string>();
        Assert.NotEmpty(token);

        // An hour of simulated time is far more than this test takes.
        var poll = watcher.CallAsync("event.from", [new[] { "host" }, token, 3600.0], extraTimeout: TimeSpan.FromSeconds(60));
        var pool = (await client.CallAsync("pool.get_all", []))!.AsArray()[0]!.GetValue<string>();
        await client.CallAsync("pool.add_to_other_config", [pool, "unwatched", "change"]);
        for (var i = 0; i < 3; i++)
        {
            await client.CallAsync("system.listMethods", []);
        }

        Assert.False(poll.IsCompleted, "event.from answered before anything it watches changed");
        var b = (await client.CallAsync("host.get_by_name_label", ["b"]))!.AsArray()[0]!.GetValue<string>();
        await client.CallAsync("host.disable", [b]);

        var changed = (await poll.WaitAsync(TimeSpan.FromSeconds(20), TimeProvider.System))!;
        var change = Assert.Single(changed["events"]!.AsArray())!;
        Assert.Equal(("host", "mod", b), (change["class"]!.GetValue<string>(), change["operation"]!.GetValue<string>(), change["ref"]!.GetValue<string>()));
        Assert.False(change["snapshot"]!["enabled"]!.GetValue<bool>());
        Assert.NotEqual(token, changed["token"]!.GetValue<string>());
    }

    [Fact]
    public async Task EventFrom_TaskSubscription_FollowsThatTaskOnly_ToItsEnd()
    {
        await using var lab = await Labs.StartAsync(TwoHosts);
        await using var client = Labs.Client(lab);
        var vms = (JsonObject)(await client.CallAsync("VM.get_all_records", []))!;
        string Vm(string name) => vms.Single(kv => kv.Value!["name_label"]!.GetValue<string>() == name).Key;
        var m = (await client.CallAsync("host.get_by_name_label", ["m"]))!.AsArray()[0]!.GetValue<string>();
        var b = (await client.CallAsync("host.get_by_name_label", ["b"]))!.AsArray()[0]!.GetValue<string>();
        var watched = (await client.CallAsync("Async.VM.pool_migrate", [Vm("v1"), b, new Dictionary<string, string>()]))!.GetValue<string>();
        var other = (await client.CallAsync("Async.VM.pool_migrate", [Vm("v2"), m, new Dictionary<string, string>()]))!.GetValue<string>();

        var token = "";
        string? status = null;
        var batches = 0;
        while (status is not ("success" or "failure") && batches++ < 200)
        {
            var batch = (await client.CallAsync("event.from", [new[] { "task/" + watched }, token, 30.0], extraTimeout: TimeSpan.FromSeconds(30)))!;
            token = batch["token"]!.GetValue<string>();
            foreach (var e in batch["events"]!.AsArray())
            {
                Assert.Equal(("task", watched), (e!["class"]!.GetValue<string>(), e["ref"]!.GetValue<string>()));
                status = e["snapshot"]!["status"]!.GetValue<string>();
            }
        }

        Assert.Equal("success", status);
        Assert.NotEqual(watched, other);
        Assert.Equal(2, ((JsonObject)(await client.CallAsync("task.get_all_records", []))!).Count);
    }

    [Fact]
    public async Task EventInject_ReturnsAToken_FromWhichEventFromSeesTheObject()
    {
        await using var lab = await Labs.StartAsync(TwoHosts);
        await using var client = Labs.Client(lab);
        var start = (await client.CallAsync("event.from", [new[] { "vm", "pool" }, "", 0.0]))!["token"]!.GetValue<string>();
        var pool = (await client.CallAsync("pool.get_all", []))!.AsArray()[0]!.GetValue<string>();

        var injected = (await client.CallAsync("event.inject", ["pool", pool]))!.GetValue<string>();

        // xapi_event.ml inject: the token just before the touch, so event.from from it reports the object.
        Assert.True(string.CompareOrdinal(injected, start) >= 0, $"{injected} should not come before {start}");
        foreach (var from in new[] { start, injected })
        {
            var batch = (await client.CallAsync("event.from", [new[] { "vm", "pool" }, from, 10.0]))!;
            var e = Assert.Single(batch["events"]!.AsArray())!;
            Assert.Equal(("pool", "mod", pool), (e["class"]!.GetValue<string>(), e["operation"]!.GetValue<string>(), e["ref"]!.GetValue<string>()));
            Assert.Equal("CLUSTER-1", e["snapshot"]!["name_label"]!.GetValue<string>());
            Assert.Empty((await client.CallAsync("event.from", [new[] { "vm", "pool" }, batch["token"]!.GetValue<string>(), 0.0]))!["events"]!.AsArray());
        }

        var bad = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("event.inject", ["VM", pool]));
        Assert.Equal("HANDLE_INVALID", bad.Code);
        Assert.Equal(["VM", pool], bad.Parameters);
    }

    [Fact]
    public async Task Getters_EveryClass_ByUuidRecordAndEveryField()
    {
        await using var lab = await Labs.StartAsync(TwoHosts);
        await using var client = Labs.Client(lab);
        var host = (await client.CallAsync("host.get_all", []))!.AsArray()[0]!.GetValue<string>();
        var task = (await client.CallAsync("Async.host.compute_free_memory", [host]))!.GetValue<string>();
        await Wait.UntilAsync(async () => (await client.CallAsync("task.get_status", [task]))!.GetValue<string>() != "pending", "the task to finish");

        foreach (var cls in new[] { "pool", "host", "host_metrics", "VM", "VM_metrics", "VM_guest_metrics", "SR", "VDI", "PBD", "VBD", "task", "network", "session" })
        {
            var refs = (await client.CallAsync(cls + ".get_all", []))!.AsArray().Select(r => r!.GetValue<string>()).ToList();
            Assert.NotEmpty(refs);
            var records = (JsonObject)(await client.CallAsync(cls + ".get_all_records", []))!;
            Assert.Equal(refs.Order(), records.Select(kv => kv.Key).Order());
            var r = refs[0];
            var record = (JsonObject)(await client.CallAsync(cls + ".get_record", [r]))!;
            var uuid = record["uuid"]!.GetValue<string>();
            Assert.Equal(r, (await client.CallAsync(cls + ".get_by_uuid", [uuid]))!.GetValue<string>());
            foreach (var (field, value) in record)
            {
                var got = await client.CallAsync($"{cls}.get_{field}", [r]);
                Assert.True(JsonNode.DeepEquals(value, got), $"{cls}.get_{field}: {got?.ToJsonString()} differs from the record's {value?.ToJsonString()}");
            }

            var e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync(cls + ".get_record", ["OpaqueRef:00000000-0000-0000-0000-000000000000"]));
            Assert.Equal("HANDLE_INVALID", e.Code);
        }

        Assert.Equal("UUID_INVALID", (await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("VM.get_by_uuid", [Guid.NewGuid().ToString()]))).Code);
    }

    [Fact]
    public async Task PoolAddToOtherConfig_KeyPresent_IsMapDuplicateKey_AndKeepsTheFirstValue()
    {
        await using var lab = await Labs.StartAsync(TwoHosts);
        await using var client = Labs.Client(lab);
        var pool = (await client.CallAsync("pool.get_all", []))!.AsArray()[0]!.GetValue<string>();

        await client.CallAsync("pool.add_to_other_config", [pool, "rollreboot-lock", "run-1"]);
        var e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("pool.add_to_other_config", [pool, "rollreboot-lock", "run-2"]));

        Assert.Equal("MAP_DUPLICATE_KEY", e.Code);
        Assert.Contains("rollreboot-lock", e.Parameters);
        Assert.Equal("run-1", (await client.CallAsync("pool.get_other_config", [pool]))!["rollreboot-lock"]!.GetValue<string>());
        Assert.Equal("run-1", lab.AuditJson()["pool"]!["otherConfig"]!["rollreboot-lock"]!.GetValue<string>());

        await client.CallAsync("pool.remove_from_other_config", [pool, "rollreboot-lock"]);
        await client.CallAsync("pool.remove_from_other_config", [pool, "rollreboot-lock"]);
        await client.CallAsync("pool.add_to_other_config", [pool, "rollreboot-lock", "run-2"]);
        var audit = lab.AuditJson();
        Assert.Equal("run-2", audit["pool"]!["otherConfig"]!["rollreboot-lock"]!.GetValue<string>());
        Assert.Equal(2, Audit.Events(audit, "pool.otherConfig.add").Count);
        Assert.Single(Audit.Events(audit, "pool.otherConfig.remove"));
    }

    [Theory]
    [InlineData("1.250.0", false, 0)]
    // 1.300 evacuates one VM at a time (parallel evacuation from 22.24.0: bab83d9d), whatever it is asked.
    [InlineData("1.300.0", true, 1)]
    [InlineData("24.19.0", true, 2)]
    public async Task HostEvacuate_NetworkAndBatchSize_AcceptedOnlyByNewerXapi(string xapiVersion, bool accepted, int batch)
    {
        await using var lab = await Labs.StartAsync(TwoHosts.Replace("\"migration\"", $"\"pool\": {{ \"xapiVersion\": \"{xapiVersion}\" }}, \"migration\"", StringComparison.Ordinal));
        await using var client = Labs.Client(lab);
        var b = (await client.CallAsync("host.get_by_name_label", ["b"]))!.AsArray()[0]!.GetValue<string>();
        var network = (await client.CallAsync("network.get_all", []))!.AsArray()[0]!.GetValue<string>();

        if (accepted)
        {
            // Once a message has a parameter with a default, xapi takes longer lists and ignores what it does not know
            // (gen_server.ml: "... :: default_args"): 1.300 has network but not the batch size, which it ignores.
            await client.CallAsync("host.evacuate", [b, network, 2L]);
            Assert.Equal(batch, Audit.Events(lab.AuditJson(), "host.evacuate", "b").Single()["batch"]!.GetValue<int>());
        }
        else
        {
            // Mandatory parameters and those received, neither counting the session.
            var e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("host.evacuate", [b, network, 2L]));
            Assert.Equal("MESSAGE_PARAMETER_COUNT_MISMATCH", e.Code);
            Assert.Equal(["host.evacuate", "1", "3"], e.Parameters);
            e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("host.evacuate", [b, network]));
            Assert.Equal(["host.evacuate", "1", "2"], e.Parameters);
            Assert.Empty(Audit.Events(lab.AuditJson(), "host.evacuate"));

            // What a client does about it: drop the optional parameters until the host accepts the call.
            await client.CallWithOptionalAsync("host.evacuate", [b], [network, 2L]);
        }

        Assert.Equal("m", Audit.Vm(lab.AuditJson(), "v2")["residentOn"]!.GetValue<string>());
    }

    /// <summary>
    /// xapi writes every reply whole, with its Content-Length and never chunked: Http_svr.response_fct sets content_length
    /// before the body (ocaml/libs/http-lib/http_svr.ml, used by api_server.ml jsoncallback). A client that reads exactly
    /// Content-Length bytes (XenServer.NET, XenAPI.py over httplib) must get the whole answer, also for a large get_all_records.
    /// </summary>
    [Fact]
    public async Task JsonRpcReply_CarriesContentLengthOfItsUtf8Bytes_AndIsNeverChunked()
    {
        var vms = string.Join(",", Enumerable.Range(1, 300).Select(i => $$"""{ "name": "vm-é-{{i}}", "host": "m", "memoryMiB": 64 }"""));
        await using var lab = await Labs.StartAsync(TwoHosts.Replace("\"vms\": [", "\"vms\": [" + vms + ",", StringComparison.Ordinal));
        using var raw = new RawXapi(lab);
        var m = Labs.Address(lab, "m");
        var session = await raw.LoginAsync(m);
        using var http = Labs.PinnedHttp(lab);

        using var content = new StringContent(raw.Request("VM.get_all_records", [session]).ToJsonString(), System.Text.Encoding.UTF8, "application/json");
        using var response = await http.PostAsync(Labs.Url(lab, m, "/jsonrpc"), content);
        var body = await response.Content.ReadAsByteArrayAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.NotEqual(true, response.Headers.TransferEncodingChunked);
        Assert.Equal(HttpVersion.Version11, response.Version);
        Assert.Equal(body.Length, response.Content.Headers.ContentLength);
        Assert.True(body.Length > 64 * 1024, $"the reply is {body.Length} bytes: too small to cross the lab's first buffer");
        var records = JsonNode.Parse(body)!["result"]!.AsObject();
        Assert.Contains(records, r => r.Value!["name_label"]!.GetValue<string>() == "vm-é-300");
    }

    /// <summary>
    /// xapi speaks HTTP/1.x only: http_svr.ml reads a request line "METHOD path HTTP/x.y" and answers 1.0 or 1.1
    /// (read_request_exn, get_return_version). A client that offers HTTP/2 by ALPN (curl, HttpClient with a 2.0 policy) gets 1.1.
    /// </summary>
    [Fact]
    public async Task AClientOfferingHttp2_IsAnsweredInHttp11()
    {
        await using var lab = await Labs.StartAsync(TwoHosts);
        using var raw = new RawXapi(lab);
        using var http = Labs.PinnedHttp(lab);
        using var request = new HttpRequestMessage(HttpMethod.Post, Labs.Url(lab, Labs.Address(lab, "m"), "/jsonrpc"))
        {
            Content = new StringContent(raw.Request("system.listMethods", []).ToJsonString(), System.Text.Encoding.UTF8, "application/json"),
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionOrLower,
        };

        using var response = await http.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(HttpVersion.Version11, response.Version);
    }
}
