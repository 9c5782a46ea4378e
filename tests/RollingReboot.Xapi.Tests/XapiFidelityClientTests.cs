using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using RollingReboot.Core.Pool;
using RollingReboot.Lab;
using RollingReboot.Lab.Scenario;
using RollingReboot.Xapi.Tls;
using RollingReboot.Xapi.Wire;

namespace RollingReboot.Xapi.Tests;

/// <summary>
/// The client against what real xapi answers (docs/lab.md, "Fidelity: XAPI"): canned answers written as xapi writes them,
/// and the lab where the behaviour needs a pool.
/// </summary>
public sealed class XapiFidelityClientTests
{
    private static string Ok(string result) => $$"""{"jsonrpc":"2.0","result":{{result}},"id":1}""";

    private static string PreDispatch(params string[] error) =>
        "{\"jsonrpc\":\"2.0\",\"error\":" + new JsonArray(error.Select(e => (JsonNode?)e).ToArray()).ToJsonString() + ",\"id\":0}";

    private static Task WaitForAsync(Func<bool> condition, string what) => WaitForAsync(() => Task.FromResult(condition()), what);

    private static async Task WaitForAsync(Func<Task<bool>> condition, string what)
    {
        var start = TimeProvider.System.GetTimestamp();
        while (!await condition())
        {
            Assert.True(TimeProvider.System.GetElapsedTime(start) < TimeSpan.FromSeconds(60), "timed out waiting for " + what);
            await Task.Delay(TimeSpan.FromMilliseconds(5), TimeProvider.System);
        }
    }

    // ---- 1. the wire ------------------------------------------------------------------------------------------------

    // What xapi before 1.9.0 wrote for a body it could not parse (api_server.ml callback, xen-api-libs xMLRPC.ml).
    private const string OldXapiFault =
        "<methodResponse><fault><value><struct><member><name>faultCode</name><value><i4>1</i4></value></member>"
        + "<member><name>faultString</name><value>Failed to parse supplied XML</value></member></struct></value></fault></methodResponse>";

    [Fact]
    public async Task Call_HostBeforeJsonRpc_AnswersAFault_ClientUsesXmlRpcOnSlash()
    {
        await using var server = await CannedXapiServer.StartAsync((c, body) =>
            c.Request.Path == "/jsonrpc"
                ? Respond.Text(c, "text/xml", OldXapiFault)
                : Respond.Text(c, "text/xml", "<methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name>"
                    + (body.Contains("login", StringComparison.Ordinal) ? "<value>OpaqueRef:s</value>" : "<value><array><data><value>OpaqueRef:h</value></data></array></value>")
                    + "</member></struct></value></param></params></methodResponse>"));
        await using var client = server.Client();

        var hosts = await client.CallAsync("host.get_all", []);

        Assert.Equal("OpaqueRef:h", hosts![0]!.ToString());
        Assert.True(client.UsesXmlRpc);
        Assert.Single(server.Requests, r => r.StartsWith("/jsonrpc ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Call_XmlThatIsNotXmlRpc_OnJsonrpc_IsAProtocolError_NotAFallback()
    {
        // A proxy's error page is no sign of an old host.
        await using var server = await CannedXapiServer.StartAsync((c, _) => Respond.Text(c, "text/xml", "<error>gateway timeout</error>", 504));
        await using var client = server.Client();

        var e = await Assert.ThrowsAsync<XapiException>(() => client.LoginAsync());

        Assert.Equal(XapiException.ProtocolError, e.Code);
        Assert.False(client.UsesXmlRpc);
        Assert.All(server.Requests, r => Assert.StartsWith("/jsonrpc ", r, StringComparison.Ordinal));
    }

    [Fact]
    public void XmlRpc_Fault_IsAProtocolError_NotAnXapiCode()
    {
        var e = Assert.Throws<XapiException>(() => XmlRpc.DecodeResponse(OldXapiFault, "session.login_with_password"));

        Assert.Equal(XapiException.ProtocolError, e.Code);
        Assert.Equal(["XML-RPC fault 1: Failed to parse supplied XML"], e.Parameters);
    }

    private const string TwoHosts = """
        { "hosts": [ { "name": "m", "memoryMiB": 65536 }, { "name": "b", "memoryMiB": 65536 } ], "vms": [ { "name": "v", "host": "b", "memoryMiB": 1024 } ] }
        """;

    private static XapiClientOptions Options(LabRuntime lab, string? url = null, TimeSpan? search = null) => new()
    {
        Url = new Uri(url ?? lab.Environment["ROLLREBOOT_XAPI_URL"]),
        UserName = lab.Environment["ROLLREBOOT_XAPI_USER"],
        Password = lab.Environment["ROLLREBOOT_XAPI_PASSWORD"],
        Certificates = new XapiCertificatePolicy(lab.Environment["ROLLREBOOT_XAPI_CERT_SHA256"].Split(',')),
        TimeProvider = lab.Clock,
        MasterSearchTimeout = search ?? TimeSpan.FromSeconds(3600),
        CallTimeout = TimeSpan.FromSeconds(30),
    };

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Call_UnknownMethod_IsMessageMethodUnknownWithTheMethod_OnBothWires(bool jsonRpc)
    {
        await using var lab = await LabRuntime.StartAsync(ScenarioLoader.Parse(TwoHosts.Replace("\"hosts\"", $"\"pool\": {{ \"jsonRpc\": {(jsonRpc ? "true" : "false")} }}, \"hosts\"", StringComparison.Ordinal)), 50, TextWriter.Null);
        await using var client = new XapiClient(Options(lab));

        var e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("VM.frobnicate", ["x"]));

        Assert.Equal("MESSAGE_METHOD_UNKNOWN", e.Code);
        Assert.Equal(["VM.frobnicate"], e.Parameters);
        Assert.Equal(!jsonRpc, client.UsesXmlRpc);
    }

    // ---- 2. event.from ----------------------------------------------------------------------------------------------

    private static string TaskBatch(string token, params (string Ref, string Status)[] tasks) =>
        Ok(new JsonObject
        {
            ["events"] = new JsonArray(tasks.Select(t => (JsonNode?)new JsonObject
            {
                ["id"] = "1",
                ["timestamp"] = "0.0",
                ["class"] = "task",
                ["operation"] = "mod",
                ["ref"] = t.Ref,
                ["snapshot"] = new JsonObject { ["uuid"] = "u", ["status"] = t.Status, ["progress"] = 0.5, ["result"] = "", ["error_info"] = new JsonArray() },
            }).ToArray()),
            ["valid_ref_counts"] = new JsonObject(),
            ["token"] = token,
        }.ToJsonString());

    private static string TokenOf(string body) => JsonNode.Parse(body)!["params"]![2]!.GetValue<string>();

    [Fact]
    public async Task RunTask_EventFromCannotParseTheToken_StartsAgainFromEmpty_AndFollowsTheTask()
    {
        var tokens = new List<string>();
        await using var server = await CannedXapiServer.StartAsync(Respond.LoginThen((c, body) =>
        {
            if (body.Contains("Async.VM.pool_migrate", StringComparison.Ordinal))
            {
                return Respond.Json(c, Ok("\"OpaqueRef:t1\""));
            }

            if (!body.Contains("event.from", StringComparison.Ordinal))
            {
                return Respond.Json(c, Ok("\"\""));
            }

            string token;
            lock (tokens)
            {
                token = TokenOf(body);
                tokens.Add(token);
            }

            return token switch
            {
                "" when tokens.Count(t => t.Length == 0) == 1 => Respond.Json(c, TaskBatch("00000000000000000007,00000000000000000000", ("OpaqueRef:t1", "pending"))),
                "" => Respond.Json(c, TaskBatch("00000000000000000009,00000000000000000000", ("OpaqueRef:t1", "success"))),
                _ => Respond.Json(c, """{"jsonrpc":"2.0","error":{"code":1,"message":"EVENT_FROM_TOKEN_PARSE_FAILURE","data":["00000000000000000007,00000000000000000000"]},"id":1}"""),
            };
        }));
        await using var client = server.Client();

        await client.RunTaskAsync("VM.pool_migrate", ["OpaqueRef:vm", "OpaqueRef:h", new Dictionary<string, string>()]).WaitAsync(TimeSpan.FromSeconds(30), TimeProvider.System);

        // (A last call may be on its way as the loop stops.)
        Assert.Equal(["", "00000000000000000007,00000000000000000000", ""], tokens.Take(3));
        Assert.Contains(server.Requests, r => r.Contains("task.destroy", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RunTask_SessionLostMeanwhile_ListsEveryTask_AndATaskThatIsGoneIsHandleInvalid()
    {
        // The master restarted: the session is invalid, the token still valid, and the task gone without a del event.
        var tokens = new List<string>();
        var sessionInvalidOnce = 0;
        await using var server = await CannedXapiServer.StartAsync(Respond.LoginThen((c, body) =>
        {
            if (body.Contains("Async.VM.pool_migrate", StringComparison.Ordinal))
            {
                return Respond.Json(c, Ok("\"OpaqueRef:t1\""));
            }

            if (!body.Contains("event.from", StringComparison.Ordinal))
            {
                return Respond.Json(c, Ok("\"\""));
            }

            string token;
            lock (tokens)
            {
                token = TokenOf(body);
                tokens.Add(token);
            }

            if (token.Length > 0 && Interlocked.Exchange(ref sessionInvalidOnce, 1) == 0)
            {
                return Respond.Json(c, """{"jsonrpc":"2.0","error":{"code":1,"message":"SESSION_INVALID","data":["OpaqueRef:s1"]},"id":1}""");
            }

            return token.Length == 0 && tokens.Count == 1
                ? Respond.Json(c, TaskBatch("00000000000000000007,00000000000000000000", ("OpaqueRef:t1", "pending")))
                : token.Length > 0
                    ? Respond.Json(c, TaskBatch(token))
                    : Respond.Json(c, TaskBatch("00000000000000000011,00000000000000000000", ("OpaqueRef:other", "pending")));
        }));
        await using var client = server.Client();

        var e = await Assert.ThrowsAsync<XapiException>(() =>
            client.RunTaskAsync("VM.pool_migrate", ["OpaqueRef:vm", "OpaqueRef:h", new Dictionary<string, string>()]).WaitAsync(TimeSpan.FromSeconds(30), TimeProvider.System));

        Assert.Equal("HANDLE_INVALID", e.Code);
        Assert.Equal(["task", "OpaqueRef:t1"], e.Parameters);
        Assert.Contains("", tokens.Skip(1));
    }

    [Fact]
    public async Task WaitForChange_EventFromCannotParseTheToken_StartsAgainFromEmpty()
    {
        var tokens = new List<string>();
        await using var server = await CannedXapiServer.StartAsync(Respond.LoginThen((c, body) =>
        {
            lock (tokens)
            {
                tokens.Add(TokenOf(body));
            }

            return tokens.Count == 2
                ? Respond.Json(c, """{"jsonrpc":"2.0","error":{"code":1,"message":"EVENT_FROM_TOKEN_PARSE_FAILURE","data":["x"]},"id":1}""")
                : Respond.Json(c, Ok("""{"events":[],"valid_ref_counts":{},"token":"00000000000000000003,00000000000000000000"}"""));
        }));
        await using var pool = new XapiPoolConnection(server.Client());

        await pool.WaitForChangeAsync(TimeSpan.FromSeconds(1));
        await pool.WaitForChangeAsync(TimeSpan.FromSeconds(1));
        await pool.WaitForChangeAsync(TimeSpan.FromSeconds(1));

        Assert.Equal(["", "00000000000000000003,00000000000000000000", ""], tokens);
    }

    private static JsonObject HostEvent(string op, string name, bool enabled) => new()
    {
        ["id"] = "1",
        ["timestamp"] = "0.0",
        ["class"] = "host",
        ["operation"] = op,
        ["ref"] = "OpaqueRef:h",
        ["snapshot"] = new JsonObject
        {
            ["uuid"] = "hu",
            ["name_label"] = name,
            ["address"] = "10.0.0.1",
            ["enabled"] = enabled,
            ["metrics"] = "OpaqueRef:m",
            ["other_config"] = new JsonObject { ["boot_time"] = "1700000000." },
        },
    };

    private static string HostBatch(string token, params JsonObject[] events) => Ok(new JsonObject
    {
        ["events"] = new JsonArray(events.Select(e => (JsonNode?)e.DeepClone()).ToArray()),
        ["valid_ref_counts"] = new JsonObject(),
        ["token"] = token,
    }.ToJsonString());

    [Fact]
    public async Task WaitForHostChange_AnswersFromTheEventSnapshots_AndAfterANewSessionFromEveryObjectAgain()
    {
        // xapi_event.ml from_inner -> events_of: each add/mod carries the object's record as get_record gives it
        // (Eventgen.find_get_record); "" as token is every object of the classes, as an add.
        var tokens = new List<string>();
        var metrics = new JsonObject
        {
            ["id"] = "1",
            ["timestamp"] = "0.0",
            ["class"] = "host_metrics",
            ["operation"] = "add",
            ["ref"] = "OpaqueRef:m",
            ["snapshot"] = new JsonObject { ["uuid"] = "mu", ["live"] = true, ["memory_total"] = "1000", ["memory_free"] = "600" },
        };
        var reads = 0;
        await using var server = await CannedXapiServer.StartAsync(Respond.LoginThen((c, body) =>
        {
            if (body.Contains("host.get_record", StringComparison.Ordinal) || body.Contains("host_metrics.get_record", StringComparison.Ordinal))
            {
                Interlocked.Increment(ref reads);
                return Respond.Json(c, body.Contains("host.get_record", StringComparison.Ordinal)
                    ? Ok(HostEvent("mod", "from-read", true)["snapshot"]!.ToJsonString())
                    : Ok(metrics["snapshot"]!.ToJsonString()));
            }

            int n;
            lock (tokens)
            {
                tokens.Add(TokenOf(body));
                n = tokens.Count;
            }

            return n switch
            {
                1 => Respond.Json(c, HostBatch("00000000000000000005,00000000000000000000", HostEvent("add", "h", true), metrics)),
                2 => Respond.Json(c, HostBatch("00000000000000000007,00000000000000000000", HostEvent("mod", "h", false))),
                // The master restarted: the session is gone; the client logs in again and asks once more, with the same token.
                3 => Respond.Json(c, """{"jsonrpc":"2.0","error":{"code":1,"message":"SESSION_INVALID","data":["OpaqueRef:s1"]},"id":1}"""),
                4 => Respond.Json(c, HostBatch("00000000000000000009,00000000000000000000", HostEvent("mod", "stale", true))),
                _ => Respond.Json(c, HostBatch("00000000000000000002,00000000000000000000", HostEvent("add", "h2", true), metrics)),
            };
        }));
        await using var pool = new XapiPoolConnection(server.Client());

        var first = await pool.WaitForHostChangeAsync("hu", TimeSpan.FromSeconds(5));
        var second = await pool.WaitForHostChangeAsync("hu", TimeSpan.FromSeconds(5));
        Assert.Equal(0, reads);
        var third = await pool.WaitForHostChangeAsync("hu", TimeSpan.FromSeconds(5));
        var fourth = await pool.WaitForHostChangeAsync("hu", TimeSpan.FromSeconds(5));

        Assert.Equal(("h", true, true, 600L, DateTimeOffset.FromUnixTimeSeconds(1700000000)), (first.Name, first.Enabled, first.Live, first.MemoryFree, first.BootTime));
        Assert.Equal(("h", false), (second.Name, second.Enabled));
        // After the new session the copies are not trusted: the host is read, and the watch starts from "" again.
        Assert.Equal("from-read", third.Name);
        Assert.Equal(2, reads);
        Assert.Equal("h2", fourth.Name);
        Assert.Equal(["", "00000000000000000005,00000000000000000000", "00000000000000000007,00000000000000000000", "00000000000000000007,00000000000000000000", ""], tokens);
    }

    [Fact]
    public async Task Read_AHostThatRefusesEventFrom_IsReadWholeEveryTime_AndAskedForEventsOnce()
    {
        var eventCalls = 0;
        var poolReads = 0;
        await using var server = await CannedXapiServer.StartAsync(Respond.LoginThen((c, body) =>
        {
            if (body.Contains("event.from", StringComparison.Ordinal))
            {
                Interlocked.Increment(ref eventCalls);
                return Respond.Json(c, """{"jsonrpc":"2.0","error":{"code":1,"message":"MESSAGE_METHOD_UNKNOWN","data":["event.from"]},"id":1}""");
            }

            if (body.Contains("pool.get_all_records", StringComparison.Ordinal))
            {
                Interlocked.Increment(ref poolReads);
                return Respond.Json(c, Ok("""{"OpaqueRef:p":{"uuid":"pu","name_label":"P","master":"OpaqueRef:NULL"}}"""));
            }

            return Respond.Json(c, Ok("{}"));
        }));
        await using var pool = new XapiPoolConnection(server.Client());

        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("P", (await pool.ReadAsync()).Name);
        }

        Assert.Equal(3, poolReads);
        Assert.Equal(1, eventCalls);
    }

    [Fact]
    public async Task WaitForHostChange_OnTheLab_FollowsAHostDisabledMeanwhile_WithEventFromAlone_AsReadHostSeesIt()
    {
        await using var lab = await LabRuntime.StartAsync(ScenarioLoader.Parse(TwoHosts), 50, TextWriter.Null);
        await using var pool = new XapiPoolConnection(new XapiClient(Options(lab)));
        await using var other = new XapiPoolConnection(new XapiClient(Options(lab)));
        var b = (await pool.ReadAsync()).Hosts.Single(h => h.Name == "b");

        var calls = pool.Client.CallCount;
        var h = await pool.WaitForHostChangeAsync(b.Uuid, TimeSpan.FromSeconds(30));
        await other.DisableHostAsync(b.Uuid);
        var waits = 1;
        while (h.Enabled && waits < 20)
        {
            h = await pool.WaitForHostChangeAsync(b.Uuid, TimeSpan.FromSeconds(30));
            waits++;
        }

        Assert.False(h.Enabled);
        Assert.Equal(waits, pool.Client.CallCount - calls);
        var read = await pool.ReadHostAsync(b.Uuid);
        Assert.Equal((read.Name, read.Address, read.Enabled, read.Live, read.MemoryTotal, read.MemoryFree, read.BootTime, read.AgentStartTime, read.Software),
            (h.Name, h.Address, h.Enabled, h.Live, h.MemoryTotal, h.MemoryFree, h.BootTime, h.AgentStartTime, h.Software));
        Assert.Equal(read.CurrentOperations, h.CurrentOperations);
        Assert.Equal(read.AllowedOperations, h.AllowedOperations);
    }

    [Fact]
    public async Task MigrateVm_MasterRestartsDuringIt_TheLostTaskEndsInHandleInvalid_NotAHang()
    {
        await using var lab = await LabRuntime.StartAsync(ScenarioLoader.Parse("""
            { "migration": { "setupSeconds": 2, "streamMBps": 5 },
              "pool": { "toolstackStartSeconds": 2 },
              "hosts": [ { "name": "m", "memoryMiB": 65536, "rebootSeconds": 30 }, { "name": "a", "memoryMiB": 65536 }, { "name": "b", "memoryMiB": 65536 } ],
              "vms": [ { "name": "v", "host": "a", "memoryMiB": 4096 } ] }
            """), 50, TextWriter.Null);
        await using var pool = new XapiPoolConnection(new XapiClient(Options(lab)));
        var snapshot = await pool.ReadAsync();
        var (m, b) = (snapshot.Hosts.Single(h => h.Name == "m").Uuid, snapshot.Hosts.Single(h => h.Name == "b").Uuid);

        // 4 GiB at 5 MB/s: about 15 simulated minutes, far longer than the master's reboot.
        var migration = pool.MigrateVmAsync(snapshot.Vms.Single(v => v.Name == "v").Uuid, b);
        await WaitForAsync(() => lab.Audit.Snapshot().Events.Any(e => e!["type"]!.GetValue<string>() == "migration.start"), "the migration to start");
        await pool.DisableHostAsync(m);
        await pool.RebootHostAsync(m);

        var e = await Assert.ThrowsAsync<XapiException>(() => migration.WaitAsync(TimeSpan.FromSeconds(60), TimeProvider.System));
        Assert.Equal("HANDLE_INVALID", e.Code);
        Assert.Contains(lab.Audit.Snapshot().Events, ev => ev!["type"]!.GetValue<string>() == "host.toolstackReady" && ev["host"]!.GetValue<string>() == "m");
    }

    // ---- 3. error parameters the client reads -----------------------------------------------------------------------

    [Fact]
    public async Task EnableHost_PendingGuidance_ErrorNamesTheHostOnly_TheGuidanceIsInTheRecord()
    {
        await using var lab = await LabRuntime.StartAsync(ScenarioLoader.Parse("""
            { "pool": { "toolstackStartSeconds": 2 },
              "hosts": [ { "name": "m", "memoryMiB": 65536 }, { "name": "b", "memoryMiB": 65536, "rebootSeconds": 20 } ],
              "faults": [ { "type": "pendingGuidance", "host": "b", "guidance": "restart_toolstack" } ] }
            """), 100, TextWriter.Null);
        await using var pool = new XapiPoolConnection(new XapiClient(Options(lab)));
        var b = (await pool.ReadAsync()).Hosts.Single(h => h.Name == "b");
        await pool.DisableHostAsync(b.Uuid);
        await pool.RebootHostAsync(b.Uuid);
        await WaitForAsync(() => lab.Audit.Snapshot().Events.Any(e => e!["type"]!.GetValue<string>() == "host.toolstackReady"), "b's toolstack");

        var e = await Assert.ThrowsAsync<XapiException>(() => pool.EnableHostAsync(b.Uuid));

        // Singular on the wire: xapi-consts/api_errors.ml host_pending_mandatory_guidances_not_empty.
        Assert.Equal("HOST_PENDING_MANDATORY_GUIDANCE_NOT_EMPTY", e.Code);
        var hostRef = (await pool.Client.CallAsync("host.get_by_uuid", [b.Uuid]))!.GetValue<string>();
        Assert.Equal([hostRef], e.Parameters);
        Assert.Contains("restart_toolstack", (await pool.ReadHostAsync(b.Uuid)).PendingGuidances);
    }

    // ---- 4. the master search and members in emergency mode ---------------------------------------------------------

    [Fact]
    public async Task Login_BelievedMasterAndAMemberInEmergencyMode_SearchGoesOnToTheMaster()
    {
        await using var internalError = await CannedXapiServer.StartAsync((c, _) => Respond.Json(c, PreDispatch("INTERNAL_ERROR", "INTERNAL_ERROR: [ Connection failed: connection refused. ]")));
        await using var cannotTalkBack = await CannedXapiServer.StartAsync((c, _) => Respond.Json(c, PreDispatch("HOST_MASTER_CANNOT_TALK_BACK", "10.0.0.7")));
        await using var master = await CannedXapiServer.StartAsync(Respond.LoginThen((c, _) => Respond.Json(c, Ok("[]"))));
        await using var client = new XapiClient(new XapiClientOptions
        {
            Url = internalError.Url,
            UserName = "root",
            Password = "secret",
            Certificates = new XapiCertificatePolicy([internalError.Fingerprint, cannotTalkBack.Fingerprint, master.Fingerprint]),
            MasterSearchTimeout = TimeSpan.FromSeconds(30),
        });
        client.RememberHosts([cannotTalkBack.Url.ToString(), master.Url.ToString()]);

        await client.LoginAsync();

        Assert.Equal(master.Url.Authority, client.MasterUrl.Authority);
        Assert.NotEmpty(cannotTalkBack.Requests);
    }

    [Fact]
    public async Task MasterReboot_AMemberRestartsMeanwhileInEmergencyMode_ReadsFindTheMasterWhenItIsBack()
    {
        await using var lab = await LabRuntime.StartAsync(ScenarioLoader.Parse("""
            { "pool": { "toolstackStartSeconds": 2 },
              "hosts": [ { "name": "m", "memoryMiB": 65536, "rebootSeconds": 600 }, { "name": "a", "memoryMiB": 65536, "rebootSeconds": 30 },
                         { "name": "b", "memoryMiB": 65536 } ] }
            """), 100, TextWriter.Null);
        await using var pool = new XapiPoolConnection(new XapiClient(Options(lab)));
        var snapshot = await pool.ReadAsync();
        var (m, a) = (snapshot.Hosts.Single(h => h.Name == "m"), snapshot.Hosts.Single(h => h.Name == "a"));
        foreach (var h in new[] { a, m })
        {
            await pool.DisableHostAsync(h.Uuid);
            await pool.RebootHostAsync(h.Uuid);
        }

        await WaitForAsync(() => lab.Audit.Snapshot().Events.Any(e => e!["type"]!.GetValue<string>() == "host.emergencyMode"), "a to be in emergency mode");

        // The search asks a (INTERNAL_ERROR before dispatch) and b (HOST_IS_SLAVE naming m) until m answers again.
        var back = await pool.ReadAsync().WaitAsync(TimeSpan.FromSeconds(60), TimeProvider.System);

        Assert.True(back.Master.BootTime > m.BootTime);
        Assert.Equal("m", back.Master.Name);
    }

    // ---- 5. the search's retries, on the client's clock -------------------------------------------------------------

    private static XapiClient ClientOn(FakeTimeProvider clock, Uri url, TimeSpan searchTimeout, params string[] fingerprints) => new(new XapiClientOptions
    {
        Url = url,
        UserName = "root",
        Password = "secret",
        Certificates = new XapiCertificatePolicy(fingerprints),
        TimeProvider = clock,
        MasterSearchTimeout = searchTimeout,
    });

    /// <summary>Logs in while moving the client's clock: each attempt comes once it has moved past the wait before it.</summary>
    private static async Task LoginMovingTheClockAsync(XapiClient client, FakeTimeProvider clock)
    {
        var login = client.LoginAsync();
        var start = TimeProvider.System.GetTimestamp();
        while (!login.IsCompleted && TimeProvider.System.GetElapsedTime(start) < TimeSpan.FromSeconds(60))
        {
            clock.Advance(TimeSpan.FromMilliseconds(50));
            await Task.Delay(TimeSpan.FromMilliseconds(2), TimeProvider.System);
        }

        await login;
    }

    [Fact]
    public async Task Login_HostStillBooting_RetriesEverySecondOnTheClientsClock()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var attempts = new List<DateTimeOffset>();
        await using var server = await CannedXapiServer.StartAsync((c, _) =>
        {
            int count;
            lock (attempts)
            {
                attempts.Add(clock.GetUtcNow());
                count = attempts.Count;
            }

            return count <= 3 ? Respond.Json(c, PreDispatch("HOST_STILL_BOOTING")) : Respond.Json(c, Ok("\"OpaqueRef:s\""));
        });
        await using var client = ClientOn(clock, server.Url, TimeSpan.FromSeconds(60), server.Fingerprint);

        await LoginMovingTheClockAsync(client, clock);
        List<TimeSpan> gaps;
        lock (attempts)
        {
            Assert.Equal(4, attempts.Count);
            gaps = attempts.Zip(attempts.Skip(1), (x, y) => y - x).ToList();
        }

        // A host still booting is asked again after a second of the client's clock each time (not the search's back-off of
        // 0.5, 1, 2 s: StillBootingRetryTests reads the exact delays from the client's timers).
        Assert.True(gaps.All(g => g >= TimeSpan.FromSeconds(1)), string.Join(", ", gaps));
    }

    [Fact]
    public async Task Login_ASearchRightAfterOneThatGotNoAnswer_GoesOnEveryFiveSeconds_NotFromHalfASecondAgain()
    {
        // A master that cannot answer (a member in emergency mode would answer so: HOST_HAS_NO_MANAGEMENT_IP before
        // dispatch). The first search backs off 0.5, 1, 2, 4, then 5 s until its deadline; a caller asking again at once
        // (the run's own retry) takes the search up where it stopped: every 5 s, not 0.5 s after the last try.
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var asks = new List<DateTimeOffset>();
        await using var master = await CannedXapiServer.StartAsync((c, _) =>
        {
            lock (asks)
            {
                asks.Add(clock.GetUtcNow());
            }

            return Respond.Json(c, PreDispatch("HOST_HAS_NO_MANAGEMENT_IP"));
        });
        await using var client = ClientOn(clock, master.Url, TimeSpan.FromSeconds(20), master.Fingerprint);

        await Assert.ThrowsAsync<XapiException>(() => LoginMovingTheClockAsync(client, clock));
        int first;
        lock (asks)
        {
            first = asks.Count;
        }

        await Assert.ThrowsAsync<XapiException>(() => LoginMovingTheClockAsync(client, clock));
        List<double> again;
        lock (asks)
        {
            again = asks.Skip(first - 1).Zip(asks.Skip(first), (x, y) => (y - x).TotalSeconds).ToList();
            Assert.True(asks.Take(first).Zip(asks.Skip(1).Take(first - 1), (x, y) => (y - x).TotalSeconds).First() < 1, "the first search starts its back-off at 0.5 s");
        }

        // From the last ask of the first search on, 5 s apart (the first gap includes no wait of the second search: 0 s
        // would mean it asked at once, which is also not from 0.5 s again).
        Assert.All(again.Skip(1), g => Assert.InRange(g, 4.95, 5.5));
    }

    [Fact]
    public async Task Login_MasterStillBooting_TheMemberNamingItIsAskedOnlyEveryThirtySeconds()
    {
        // While the master's toolstack starts (HOST_STILL_BOOTING, asked every second), a member can only name that same
        // master (HOST_IS_SLAVE): it is asked at the first miss and then once per 30 s of the client's clock, not at
        // every retry.
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var masterAsks = 0;
        var memberAsks = new List<DateTimeOffset>();
        Uri? masterUrl = null;
        await using var master = await CannedXapiServer.StartAsync((c, _) =>
            Interlocked.Increment(ref masterAsks) <= 70 ? Respond.Json(c, PreDispatch("HOST_STILL_BOOTING")) : Respond.Json(c, Ok("\"OpaqueRef:s\"")));
        masterUrl = master.Url;
        await using var member = await CannedXapiServer.StartAsync((c, _) =>
        {
            lock (memberAsks)
            {
                memberAsks.Add(clock.GetUtcNow());
            }

            return Respond.Json(c, PreDispatch("HOST_IS_SLAVE", masterUrl.ToString()));
        });
        await using var client = ClientOn(clock, master.Url, TimeSpan.FromMinutes(5), master.Fingerprint, member.Fingerprint);
        client.RememberHosts([member.Url.ToString()]);

        await LoginMovingTheClockAsync(client, clock);
        Assert.Equal(master.Url.Authority, client.MasterUrl.Authority);
        List<TimeSpan> gaps;
        lock (memberAsks)
        {
            // 70 misses a second apart: the member at the first and then every 30 s (3 asks), not 70 times.
            Assert.InRange(memberAsks.Count, 2, 4);
            gaps = memberAsks.Zip(memberAsks.Skip(1), (x, y) => y - x).ToList();
        }

        Assert.True(gaps.All(g => g >= XapiClient.MemberAskInterval), string.Join(", ", gaps));
    }
}
