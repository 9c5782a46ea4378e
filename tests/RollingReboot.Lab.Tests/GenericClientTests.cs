using System.Globalization;
using System.Text;
using System.Text.Json;

namespace RollingReboot.Lab.Tests;

/// <summary>
/// A client written for real XenServer, not for this project: plain HttpClient and hand-written JSON-RPC. The lab
/// must let it log in (through a member), read the pool, live-migrate a VM and clean up its task.
/// </summary>
public sealed class GenericClientTests
{
    [Fact]
    public async Task PlainHttpClient_LogsInThroughAMember_ReadsThePool_MigratesAVm_DestroysTheTask()
    {
        await using var lab = await Labs.StartAsync("""
            { "pool": { "name": "GENERIC" }, "migration": { "setupSeconds": 5 },
              "hosts": [ { "name": "xs1", "memoryMiB": 131072 }, { "name": "xs2", "memoryMiB": 131072, "master": true }, { "name": "xs3", "memoryMiB": 131072 } ],
              "vms": [ { "name": "web", "host": "xs1", "memoryMiB": 4096 }, { "name": "db", "host": "xs2", "memoryMiB": 8192 } ] }
            """);
        using var http = Labs.PinnedHttp(lab);
        var user = lab.Environment["ROLLREBOOT_XAPI_USER"];
        var password = lab.Environment["ROLLREBOOT_XAPI_PASSWORD"];
        var host = new Uri(lab.Environment["ROLLREBOOT_XAPI_URL"]).Host;
        var port = lab.XapiPort.ToString(CultureInfo.InvariantCulture);
        var id = 0;

        async Task<JsonElement> Call(string method, string paramsJson)
        {
            var body = $$"""{"jsonrpc":"2.0","method":"{{method}}","params":{{paramsJson}},"id":{{++id}}}""";
            using var content = new StringContent(body, Encoding.UTF8, "application/json");
            using var response = await http.PostAsync(new Uri($"https://{host}:{port}/jsonrpc"), content);
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            if (doc.RootElement.TryGetProperty("error", out var error) && error.ValueKind != JsonValueKind.Null)
            {
                var description = error.ValueKind == JsonValueKind.Array
                    ? error.EnumerateArray().Select(e => e.GetString()!).ToList()
                    : [error.GetProperty("message").GetString()!, .. error.TryGetProperty("data", out var data) && data.ValueKind == JsonValueKind.Array ? data.EnumerateArray().Select(d => d.ToString()) : []];
                throw new XenApiFailure(description);
            }

            return doc.RootElement.GetProperty("result").Clone();
        }

        string Quote(string s) => JsonSerializer.Serialize(s);

        // xs1 is a member: it names the master, and the client goes there.
        var redirect = await Assert.ThrowsAsync<XenApiFailure>(() => Call("session.login_with_password", $"[{Quote(user)},{Quote(password)},\"1.1\",\"generic\"]"));
        Assert.Equal("HOST_IS_SLAVE", redirect.Description[0]);
        host = redirect.Description[1];
        var session = (await Call("session.login_with_password", $"[{Quote(user)},{Quote(password)},\"1.1\",\"generic\"]")).GetString()!;
        var s = Quote(session);

        var pools = await Call("pool.get_all_records", $"[{s}]");
        var pool = Assert.Single(pools.EnumerateObject()).Value;
        Assert.Equal("GENERIC", pool.GetProperty("name_label").GetString());
        var hosts = (await Call("host.get_all_records", $"[{s}]")).EnumerateObject().ToDictionary(h => h.Value.GetProperty("name_label").GetString()!, h => h);
        Assert.Equal(["xs1", "xs2", "xs3"], hosts.Keys.Order());
        Assert.Equal(hosts["xs2"].Name, pool.GetProperty("master").GetString());
        Assert.Equal(host, hosts["xs2"].Value.GetProperty("address").GetString());
        var vms = (await Call("VM.get_all_records", $"[{s}]")).EnumerateObject()
            .Where(v => !v.Value.GetProperty("is_control_domain").GetBoolean() && !v.Value.GetProperty("is_a_template").GetBoolean())
            .ToDictionary(v => v.Value.GetProperty("name_label").GetString()!, v => v);
        Assert.Equal(["db", "web"], vms.Keys.Order());
        var web = vms["web"];
        Assert.Equal("Running", web.Value.GetProperty("power_state").GetString());
        Assert.Equal(hosts["xs1"].Name, web.Value.GetProperty("resident_on").GetString());

        var task = (await Call("Async.VM.pool_migrate", $$"""[{{s}},{{Quote(web.Name)}},{{Quote(hosts["xs3"].Name)}},{"live":"true"}]""")).GetString()!;
        Assert.StartsWith("OpaqueRef:", task, StringComparison.Ordinal);
        JsonElement record = default;
        await Wait.UntilAsync(async () =>
        {
            record = await Call("task.get_record", $"[{s},{Quote(task)}]");
            return record.GetProperty("status").GetString() != "pending";
        }, "the migration task to finish");

        Assert.Equal("success", record.GetProperty("status").GetString());
        Assert.Equal(1.0, record.GetProperty("progress").GetDouble());
        Assert.Empty(record.GetProperty("error_info").EnumerateArray());
        await Call("task.destroy", $"[{s},{Quote(task)}]");
        var gone = await Assert.ThrowsAsync<XenApiFailure>(() => Call("task.get_record", $"[{s},{Quote(task)}]"));
        Assert.Equal("HANDLE_INVALID", gone.Description[0]);
        Assert.Equal(hosts["xs3"].Name, (await Call("VM.get_resident_on", $"[{s},{Quote(web.Name)}]")).GetString());
        await Call("session.logout", $"[{s}]");

        var audit = lab.AuditJson();
        var end = Audit.Events(audit, "migration.end", vm: "web").Single();
        Assert.True(end["ok"]!.GetValue<bool>());
        Assert.Equal(("xs1", "xs3"), (end["from"]!.GetValue<string>(), end["to"]!.GetValue<string>()));
        Assert.Empty(Audit.Violations(audit));
    }

    private sealed class XenApiFailure(IReadOnlyList<string> description) : Exception(string.Join(" ", description))
    {
        public XenApiFailure() : this([]) { }

        public IReadOnlyList<string> Description { get; } = description;
    }
}
