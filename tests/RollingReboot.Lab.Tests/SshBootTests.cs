using Microsoft.Extensions.Time.Testing;
using RollingReboot.Lab.Scenario;
using RollingReboot.Lab.Sim;

namespace RollingReboot.Lab.Tests;

/// <summary>
/// A booting host's sshd answers before its xapi starts (pool.sshBeforeXapiSeconds): sshd.service needs only the
/// network, xen-api scripts/xapi.service starts after xcp-networkd, xenopsd-xc, xcp-rrdd, time-sync.target and more.
/// Driven on a fake clock, so the simulated moments are exact whatever the machine's speed.
/// </summary>
public sealed class SshBootTests
{
    private const string Scenario = """
        { "pool": { "toolstackStartSeconds": 5, "sshBeforeXapiSeconds": 30 },
          "hosts": [ { "name": "m", "master": true, "memoryMiB": 65536, "rebootSeconds": 100 },
                     { "name": "h2", "memoryMiB": 65536, "rebootSeconds": 100 } ] }
        """;

    private sealed class Recorder(Func<double> now) : ISimEnvironment
    {
        public List<(string What, string Host, double At, string? BootId)> Calls { get; } = [];

        public void XapiServing(SimHost host, bool serving) => Calls.Add((serving ? "xapi.up" : "xapi.down", host.Name, now(), null));

        public void HostPowered(SimHost host, bool up) => Calls.Add((up ? "power.up" : "power.down", host.Name, now(), host.BootId));

        public void SshAnswering(SimHost host, string bootId) => Calls.Add(("ssh.up", host.Name, now(), bootId));
    }

    private static (SimPool Sim, FakeTimeProvider Clock, Recorder Env) Start(string json)
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 3, 1, 8, 0, 0, TimeSpan.Zero));
        var origin = clock.GetUtcNow();
        var sim = new SimPool(ScenarioLoader.Parse(json), clock, new LabAudit(() => (clock.GetUtcNow() - origin).TotalSeconds), "pw", origin);
        var env = new Recorder(() => (clock.GetUtcNow() - origin).TotalSeconds);
        sim.Attach(env);
        return (sim, clock, env);
    }

    private static void At(SimPool sim, FakeTimeProvider clock, double seconds)
    {
        clock.SetUtcNow(sim.Origin.AddSeconds(seconds));
        sim.Advance();
    }

    [Fact]
    public void Reboot_SshAnswersTheNewBootBeforeXapiStarts_AndXapiComesUpInThatBoot()
    {
        var (sim, clock, env) = Start(Scenario);
        var h = sim.Hosts.Single(x => x.Name == "h2");
        var oldBoot = h.BootId;

        sim.ScheduleShutdown(h, powerOff: false);
        At(sim, clock, 10);
        Assert.Contains(env.Calls, c => c is ("power.down", "h2", 10, _));

        // Down for rebootSeconds (100): sshd answers 30 s before xapi starts, the host still down for XAPI.
        At(sim, clock, 79.9);
        Assert.DoesNotContain(env.Calls, c => c.What == "ssh.up");
        At(sim, clock, 80);
        var ssh = Assert.Single(env.Calls, c => c.What == "ssh.up");
        Assert.Equal(("h2", 80.0), (ssh.Host, ssh.At));
        Assert.NotEqual(oldBoot, ssh.BootId);
        Assert.False(h.Live);
        Assert.Equal(oldBoot, h.BootId);

        // xapi starts at 110 in the boot sshd already answered for.
        At(sim, clock, 110);
        var up = Assert.Single(env.Calls, c => c.What == "power.up");
        Assert.Equal(110.0, up.At);
        Assert.True(h.Live);
        Assert.Equal(ssh.BootId, h.BootId);
        Assert.Equal(ssh.BootId, up.BootId);
    }

    [Fact]
    public void Reboot_LeadLongerThanTheReboot_SshAnswersAtPowerOff_NotBefore()
    {
        var (sim, clock, env) = Start(Scenario.Replace("\"sshBeforeXapiSeconds\": 30", "\"sshBeforeXapiSeconds\": 500", StringComparison.Ordinal));
        var h = sim.Hosts.Single(x => x.Name == "h2");

        sim.ScheduleShutdown(h, powerOff: false);
        At(sim, clock, 10);

        var ssh = Assert.Single(env.Calls, c => c.What == "ssh.up");
        Assert.Equal(10.0, ssh.At);
        Assert.True(env.Calls.FindIndex(c => c.What == "power.down") < env.Calls.FindIndex(c => c.What == "ssh.up"));
    }

    [Fact]
    public void PowerOff_NoBootScheduled_SshStaysDown()
    {
        var (sim, clock, env) = Start(Scenario);
        var h = sim.Hosts.Single(x => x.Name == "h2");

        sim.ScheduleShutdown(h, powerOff: true);
        At(sim, clock, 500);

        Assert.DoesNotContain(env.Calls, c => c.What is "ssh.up" or "power.up");
    }
}
