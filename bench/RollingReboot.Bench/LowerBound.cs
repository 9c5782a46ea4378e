using RollingReboot.Lab.Scenario;

namespace RollingReboot.Bench;

/// <summary>
/// The lower bound of a rolling reboot, from the scenario alone (one host down at a time): every byte that must
/// leave a host crosses that host's link at full speed, and every reboot takes its full time, hosts in sequence.
/// </summary>
public static class LowerBound
{
    public const double ShutdownSeconds = 10;

    /// <summary>Seconds; <paramref name="hostsInRun"/> null means every host.</summary>
    public static LowerBoundParts Compute(ScenarioFile s, IReadOnlyCollection<string>? hostsInRun)
    {
        var run = s.Hosts.Where(h => hostsInRun is null || hostsInRun.Contains(h.Name)).ToList();
        var master = s.Hosts.First(h => h.Master);
        var linkBytesPerSecond = s.Migration.HostLinkMBps * 1e6;
        var factor = 1 + s.Migration.DirtyRatio;
        double BytesOn(string host) => s.Vms.Where(v => v.Host == host && v.PowerState == "Running").Sum(v => v.MemoryMiB * 1048576.0 * factor);

        var migration = run.Sum(h => BytesOn(h.Name)) / linkBytesPerSecond;

        // The master goes first, when no host is rebooted yet: its VMs land on hosts that still have to be
        // rebooted and must leave them again. Hosts outside the run (--hosts) never reboot and can keep them.
        var masterTwice = run.Any(h => h.Master) && run.Count == s.Hosts.Count ? BytesOn(master.Name) / linkBytesPerSecond : 0;
        var reboot = run.Sum(h => ShutdownSeconds + RebootSecondsOf(s, h) + s.Pool.ToolstackStartSeconds);
        return new LowerBoundParts(migration, masterTwice, reboot, run.Sum(h => BytesOn(h.Name)) + (masterTwice > 0 ? BytesOn(master.Name) : 0));
    }

    private static double RebootSecondsOf(ScenarioFile s, HostSpec h) =>
        s.Faults.FirstOrDefault(f => f.Type == "slowReboot" && f.Host == h.Name)?.RebootSeconds ?? h.RebootSeconds;
}

public sealed record LowerBoundParts(double MigrationSeconds, double MasterAgainSeconds, double RebootSeconds, double Bytes)
{
    public double TotalSeconds => MigrationSeconds + MasterAgainSeconds + RebootSeconds;
}
