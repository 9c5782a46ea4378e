using System.Globalization;
using System.Text.Json.Nodes;

namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>The real CLI against one pool of a fleet lab: that pool rolls, the others see nothing.</summary>
public sealed class FleetEndToEndTests
{
    [Fact]
    public async Task Exec_ClusterBOfAFleet_ReachedAtItsOwnAddressOnTheSamePort_RebootsOnlyB()
    {
        await using var lab = await LabHarness.StartFleetFromFilesAsync(400, "fleet-a-three-hosts.json", "fleet-b-three-hosts.json", "fleet-c-three-hosts.json");
        var bMaster = lab.Audit("CLUSTER-B")["hosts"]!.AsArray().Select(h => h!["address"]!.GetValue<string>()).First();
        var url = $"https://{bMaster}:{lab.Lab.XapiPort.ToString(CultureInfo.InvariantCulture)}/";

        // The lab's env points at pool A; the same pins, credentials and CloudStack serve B at B's address.
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CLUSTER-B", "--exec", "--xapi-url", url);

        Assert.True(code == 0, $"exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        var audits = lab.Audits();
        var b = audits["CLUSTER-B"];
        Assert.Empty(b["violations"]!.AsArray());
        Assert.All(b["hosts"]!.AsArray(), h => Assert.Equal(1, h!["bootCount"]!.GetValue<int>()));
        Assert.True(b["pool"]!["haEnabled"]!.GetValue<bool>());
        Assert.Equal("Managed", b["cloudstack"]!["managedState"]!.GetValue<string>());
        Assert.Contains(b["events"]!.AsArray(), e => e!["type"]!.GetValue<string>() == "cloudstack.managedState");

        foreach (var other in new[] { "CLUSTER-A", "CLUSTER-C" })
        {
            var audit = audits[other];
            Assert.Empty(audit["violations"]!.AsArray());
            Assert.All(audit["hosts"]!.AsArray(), h => Assert.Equal(0, h!["bootCount"]!.GetValue<int>()));
            Assert.All(audit["vms"]!.AsArray(), v => Assert.Equal(0, v!["migrations"]!.GetValue<int>()));
            Assert.Empty(audit["events"]!.AsArray());
            Assert.Equal("Managed", audit["cloudstack"]!["managedState"]!.GetValue<string>());
        }
    }
}
