using System.Text.Json.Nodes;

namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>
/// --halt with host.power_on (issue 19): a member whose power_on_mode is set is powered on by the pool master once XAPI
/// has it down and --power-on-delay has passed (xapi_host.ml power_on; xapi_host_helpers.ml: HOST_IS_LIVE,
/// HOST_POWER_ON_MODE_DISABLED); the master, a host without a mode and one whose BMC fails wait for someone, as before.
/// </summary>
public sealed class HaltPowerOnTests
{
    private const string Scenario = """
        {
          "name": "PO", "pool": { "name": "PO", "ha": { "enabled": true, "timeoutSeconds": 240, "heartbeatSr": "nfs" } },
          "cloudstack": { "clusterName": "POC" },
          "migration": { "setupSeconds": 3 },
          "hosts": [ { "name": "po1", "master": true, "memoryMiB": 32768, "rebootSeconds": 100, "powerOnMode": "iLO" },
                     { "name": "po2", "memoryMiB": 32768, "rebootSeconds": 100, "powerOnMode": "iLO" },
                     { "name": "po3", "memoryMiB": 32768, "rebootSeconds": 100, "powerOnMode": "wake-on-lan", "powerOnFails": true },
                     { "name": "po4", "memoryMiB": 32768, "rebootSeconds": 100 } ],
          "srs": [ { "name": "nfs", "shared": true } ],
          "generate": [ { "hosts": ["po1", "po2", "po3", "po4"], "perHost": 3, "memoryMiB": [2048], "seed": 3 } ]
        }
        """;

    private static IEnumerable<JsonNode> Events(JsonObject audit, string type, string host) =>
        audit["events"]!.AsArray().Where(e => e!["type"]!.ToString() == type && e["host"]?.ToString() == host).Select(e => e!);

    /// <summary>host.power_on through XAPI (the lab's power button is audited with "via").</summary>
    private static IEnumerable<JsonNode> XapiPowerOns(JsonObject audit, string host) =>
        Events(audit, "host.powerOn", host).Where(e => e["via"] is null);

    [Fact]
    public async Task Halt_MembersWithAPowerOnModeArePoweredOnByTheMasterAfterTheDelay_OthersWaitForSomeone_NothingLost()
    {
        await using var lab = await LabHarness.StartAsync(Scenario, timeScale: 200);
        // Someone in the data centre presses the power button of the hosts XAPI cannot power on: the master (nobody is
        // left to call host.power_on), po3 (its BMC fails) and po4 (no power_on_mode); never po2.
        var needSomeone = new[] { "po1", "po3", "po4" };
        var pressed = new List<string>();
        using var stopPressing = new CancellationTokenSource();
        var pressing = Task.Run(async () =>
        {
            while (!stopPressing.IsCancellationRequested)
            {
                var audit = lab.Audit();
                foreach (var name in needSomeone.Except(pressed))
                {
                    var down = Events(audit, "host.down", name).Any();
                    // po3: only once rollreboot's power-on has failed, so the test sees the failure path.
                    var ready = name != "po3" || Events(audit, "host.powerOn.failed", name).Any();
                    if (down && ready && lab.Lab.PressPowerButton(name))
                    {
                        pressed.Add(name);
                    }
                }

                await Task.Delay(TimeSpan.FromMilliseconds(100), TimeProvider.System);
            }
        });

        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "POC", "--exec", "--halt", "--power-on-delay", "10m", "--power-on-timeout", "3h");
        await stopPressing.CancelAsync();
        await pressing;
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");

        var a = lab.Audit();
        Assert.Empty(a["violations"]!.AsArray());
        Assert.All(a["hosts"]!.AsArray(), h => Assert.Equal(1, h!["bootCount"]!.GetValue<int>()));
        Assert.All(a["hosts"]!.AsArray(), h => Assert.True(h!["enabled"]!.GetValue<bool>()));
        Assert.All(a["vms"]!.AsArray(), v => Assert.Equal("Running", v!["powerState"]!.ToString()));
        Assert.True(a["pool"]!["haEnabled"]!.GetValue<bool>());
        Assert.Equal("Managed", a["cloudstack"]!["managedState"]!.ToString());
        Assert.Equal(4, a["events"]!.AsArray().Count(e => e!["type"]!.ToString() == "host.shutdown"));

        // po2: powered on through XAPI, not by the button, ten simulated minutes (the delay) after it went down.
        Assert.DoesNotContain("po2", pressed);
        var down2 = Events(a, "host.down", "po2").Single()["t"]!.GetValue<double>();
        var on2 = XapiPowerOns(a, "po2").Single()["t"]!.GetValue<double>();
        Assert.InRange(on2 - down2, 600, 700);
        Assert.Contains("powered on by the pool master", stderr, StringComparison.Ordinal);

        // po3's BMC failed (INTERNAL_ERROR from the plugin): tried once, then someone; po4 has no mode: never asked.
        Assert.Single(Events(a, "host.powerOn.failed", "po3"));
        Assert.Empty(XapiPowerOns(a, "po4"));
        Assert.Empty(XapiPowerOns(a, "po1"));
        Assert.Equal(needSomeone.Order(), pressed.Order());
        Assert.Contains("po4 has no power_on_mode", stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("soon")]
    [InlineData("-5m")]
    public async Task PowerOnDelay_NotADurationNorManual_IsExit2_NothingChanged(string value)
    {
        await using var lab = await LabHarness.StartAsync(Scenario, timeScale: 200);
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "POC", "--exec", "--halt", "--power-on-delay", value);
        Assert.True(code == 2, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("--power-on-delay", stderr, StringComparison.Ordinal);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.DoesNotContain(lab.Audit()["events"]!.AsArray(), e => e!["type"]!.ToString() is "host.disable" or "host.shutdown");
    }
}
