using System.Text.Json.Nodes;

namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>What the end-to-end tests assert from a lab's audit, written once.</summary>
internal static class AuditAssert
{
    public static int[] BootCounts(JsonObject audit) =>
        audit["hosts"]!.AsArray().Select(h => h!["bootCount"]!.GetValue<int>()).ToArray();

    /// <summary>Nothing lost, everything the run changed put back: HA, CloudStack Managed, no lock or marker, hosts enabled.</summary>
    public static void Restored(JsonObject audit, bool vmsRunning = true)
    {
        Assert.Empty(audit["violations"]!.AsArray());
        Assert.True(audit["pool"]!["haEnabled"]!.GetValue<bool>());
        Assert.Equal("Managed", audit["cloudstack"]!["managedState"]!.ToString());
        Assert.Empty(audit["pool"]!["otherConfig"]!.AsObject());
        Assert.All(audit["hosts"]!.AsArray(), h => Assert.True(h!["enabled"]!.GetValue<bool>()));
        if (vmsRunning)
        {
            Assert.All(audit["vms"]!.AsArray(), v => Assert.Equal("Running", v!["powerState"]!.ToString()));
        }
    }

    /// <summary>The run changed nothing at all: no host disabled, HA never off, no lock, no reboot, no migration.</summary>
    public static void NothingChanged(JsonObject audit)
    {
        Assert.DoesNotContain(audit["events"]!.AsArray(), e => e!["type"]!.GetValue<string>() is "host.disable" or "ha.disable" or "lock.acquire" or "host.reboot" or "vm.migrate");
        Assert.All(BootCounts(audit), n => Assert.Equal(0, n));
        Restored(audit);
    }
}
