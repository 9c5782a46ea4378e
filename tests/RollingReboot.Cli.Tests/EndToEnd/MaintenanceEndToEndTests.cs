using System.Text.Json.Nodes;

namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>'rollreboot evacuate' and 'rollreboot return': one host out for hardware work and back, nothing rebooted.</summary>
public sealed class MaintenanceEndToEndTests
{
    private static readonly string FourHosts = LabHarness.FourHosts("MP", "MC", "m");

    private static List<string> VmsOn(JsonObject audit, string host) =>
        audit["vms"]!.AsArray().Where(v => v!["residentOn"]?.ToString() == host).Select(v => v!["name"]!.ToString()).Order(StringComparer.Ordinal).ToList();

    private static JsonNode Host(JsonObject audit, string name) => audit["hosts"]!.AsArray().First(h => h!["name"]!.ToString() == name)!;

    [Fact]
    public async Task Evacuate_EmptiesAndDisablesOneHost_ReturnBringsItsVmsBack_NothingRebooted()
    {
        await using var lab = await LabHarness.StartAsync(FourHosts, timeScale: 200);
        var before = lab.Audit();
        var m3Vms = VmsOn(before, "m3");
        Assert.Equal(3, m3Vms.Count);

        var (code, stdout, stderr) = await lab.RunCliAsync("evacuate", "--clustername", "MC", "--host", "m3", "--format", "json");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Equal(3, JsonNode.Parse(stdout)!["steps"]!.AsArray().Single()!["migrations"]!.AsArray().Count);
        Assert.Equal(before["events"]!.AsArray().Count, lab.Audit()["events"]!.AsArray().Count);

        (code, stdout, stderr) = await lab.RunCliAsync("evacuate", "--clustername", "MC", "--host", "m3", "--exec");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("rollreboot return --clustername MC --host m3", stdout, StringComparison.Ordinal);
        // CloudStack cannot connect a host XAPI shows disabled: expected while it is out, said, not an operator action.
        Assert.Contains("note: host m3 is disabled in XAPI, so CloudStack cannot connect it", stdout, StringComparison.Ordinal);
        var audit = lab.Audit();
        Assert.Empty(audit["violations"]!.AsArray());
        Assert.Empty(VmsOn(audit, "m3"));
        Assert.False(Host(audit, "m3")["enabled"]!.GetValue<bool>());
        // xapi 24.19 (the lab's default) has no auto_enable: a plain host.disable.
        Assert.True(Host(audit, "m3")["autoEnable"]!.GetValue<bool>());
        Assert.All(audit["hosts"]!.AsArray(), h => Assert.Equal(0, h!["bootCount"]!.GetValue<int>()));
        Assert.All(audit["vms"]!.AsArray(), v => Assert.Equal("Running", v!["powerState"]!.ToString()));
        Assert.True(audit["pool"]!["haEnabled"]!.GetValue<bool>());
        Assert.Equal("Managed", audit["cloudstack"]!["managedState"]!.ToString());
        var otherConfig = audit["pool"]!["otherConfig"]!.AsObject();
        Assert.Single(otherConfig);
        Assert.StartsWith("rollreboot-evacuated-", otherConfig.Single().Key, StringComparison.Ordinal);

        // A second evacuate is refused with the way back; a return dry run changes nothing.
        (code, _, stderr) = await lab.RunCliAsync("evacuate", "--clustername", "MC", "--host", "m3", "--exec");
        Assert.Equal(2, code);
        Assert.Contains("already evacuated", stderr, StringComparison.Ordinal);
        (code, stdout, _) = await lab.RunCliAsync("return", "--clustername", "MC", "--host", "m3");
        Assert.Equal(0, code);
        Assert.Contains("would enable m3", stdout, StringComparison.Ordinal);
        Assert.False(Host(lab.Audit(), "m3")["enabled"]!.GetValue<bool>());

        (code, stdout, stderr) = await lab.RunCliAsync("return", "--clustername", "MC", "--host", "m3", "--exec");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        audit = lab.Audit();
        Assert.True(Host(audit, "m3")["enabled"]!.GetValue<bool>());
        Assert.Equal(m3Vms, VmsOn(audit, "m3"));
        Assert.Empty(audit["pool"]!["otherConfig"]!.AsObject());
        Assert.Empty(audit["violations"]!.AsArray());
        Assert.All(audit["hosts"]!.AsArray(), h => Assert.Equal(0, h!["bootCount"]!.GetValue<int>()));

        // Nothing left to return.
        (code, _, stderr) = await lab.RunCliAsync("return", "--clustername", "MC", "--host", "m3", "--exec");
        Assert.Equal(2, code);
        Assert.Contains("nothing to return", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Evacuate_OnXapi2531_DisablesWithAutoEnableFalse_SoTheHostStaysOutAcrossReboots_ReturnResetsIt()
    {
        // host.disable auto_enable=false from xapi 25.31.0 (idl/datamodel_host.ml); host.enable resets it (xapi_host.ml).
        var scenario = FourHosts.Replace("\"pool\": { \"name\": \"MP\",", "\"pool\": { \"name\": \"MP\", \"xapiVersion\": \"25.31.0\",", StringComparison.Ordinal);
        Assert.Contains("25.31.0", scenario, StringComparison.Ordinal);
        await using var lab = await LabHarness.StartAsync(scenario, timeScale: 200);

        var (code, stdout, stderr) = await lab.RunCliAsync("evacuate", "--clustername", "MC", "--host", "m3", "--exec");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("disabled with auto_enable=false", stdout + stderr, StringComparison.Ordinal);
        var audit = lab.Audit();
        Assert.False(Host(audit, "m3")["enabled"]!.GetValue<bool>());
        Assert.False(Host(audit, "m3")["autoEnable"]!.GetValue<bool>());

        (code, stdout, stderr) = await lab.RunCliAsync("return", "--clustername", "MC", "--host", "m3", "--exec");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        audit = lab.Audit();
        Assert.True(Host(audit, "m3")["enabled"]!.GetValue<bool>());
        Assert.True(Host(audit, "m3")["autoEnable"]!.GetValue<bool>());
        Assert.Empty(audit["violations"]!.AsArray());
    }
}
