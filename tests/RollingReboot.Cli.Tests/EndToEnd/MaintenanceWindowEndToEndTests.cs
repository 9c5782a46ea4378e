using System.Globalization;
using System.Text.Json.Nodes;

namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>
/// --window with days and a zone against the lab. Each window is written from the lab's own clock (its scaled
/// simulated time, which the CLI shares), in Asia/Kolkata (+05:30, no DST), so a test is inside or outside it
/// whatever the machine's date, zone or speed: inside it the run goes to the end, outside it nothing changes and
/// the next opening is named, with --wait-for-window it waits for the opening, and resume honours it too.
/// </summary>
public sealed class MaintenanceWindowEndToEndTests
{
    private const string Zone = "Asia/Kolkata";
    private static readonly string FourHosts = LabHarness.FourHosts("WP", "WC", "w");
    private static readonly string[] s_days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

    /// <summary>A 3-hour opening on one day that starts <paramref name="fromNow"/> after the lab's now (negative: already open).</summary>
    private static (string Text, DateTimeOffset Opens) Opening(LabHarness lab, TimeSpan fromNow)
    {
        var zone = TimeZoneInfo.FindSystemTimeZoneById(Zone);
        var opens = TimeZoneInfo.ConvertTime(lab.Lab.Clock.GetUtcNow() + fromNow, zone);
        // Whole minutes, rounded up: the window's text has no seconds.
        opens = opens.AddTicks(-(opens.Ticks % TimeSpan.TicksPerMinute)).AddMinutes(1);
        var ends = opens.AddHours(3);
        return ($"{s_days[(int)opens.DayOfWeek]} {opens:HH:mm}-{ends:HH:mm} {Zone}", opens);
    }

    private static string Local(DateTimeOffset moment) =>
        string.Create(CultureInfo.InvariantCulture, $"{s_days[(int)moment.DayOfWeek]} {moment:yyyy-MM-dd HH:mm} +05:30");

    [Fact]
    public async Task InsideTheWindow_ThePlanSaysOpen_AndTheRunGoesToTheEnd()
    {
        await using var lab = await LabHarness.StartAsync(FourHosts, timeScale: 200);
        var (window, _) = Opening(lab, TimeSpan.FromMinutes(-30));

        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "WC", "--window", window);
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains($"Window: {window}: open now, until ", stdout, StringComparison.Ordinal);

        (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "WC", "--exec", "--window", window);
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("In the maintenance window", stderr, StringComparison.Ordinal);
        Assert.All(AuditAssert.BootCounts(lab.Audit()), n => Assert.Equal(1, n));
        AuditAssert.Restored(lab.Audit());
    }

    [Fact]
    public async Task OutsideTheWindow_NothingChanges_TheNextOpeningIsNamed_FromTheCommandLineAndTheConfigFile()
    {
        await using var lab = await LabHarness.StartAsync(FourHosts, timeScale: 200);
        var (window, opens) = Opening(lab, TimeSpan.FromHours(6));

        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "WC", "--window", window, "--format", "json");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var plan = JsonNode.Parse(stdout)!;
        Assert.False(plan["window"]!["openNow"]!.GetValue<bool>());
        Assert.Equal(window, plan["window"]!["window"]!.ToString());
        Assert.Contains($"next opening {Local(opens)}", plan["window"]!["text"]!.ToString(), StringComparison.Ordinal);

        (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "WC", "--exec", "--window", window);
        Assert.True(code == 3, $"exit {code}\n{stdout}\n{stderr}");
        // How far away depends on how long the CLI took to start (minutes of simulated time); about 6 hours.
        Assert.Matches(System.Text.RegularExpressions.Regex.Escape($"outside the maintenance window {window}: next opening {Local(opens)}") + @" \(in [56]h( \d+m)?\); nothing was changed", stdout + stderr);
        AuditAssert.NothingChanged(lab.Audit());

        // Waiting is bounded: an opening further away than --max-window-wait is exit 3 at once.
        (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "WC", "--exec", "--window", window, "--wait-for-window", "--max-window-wait", "2h");
        Assert.True(code == 3, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("later than --max-window-wait 2h", stdout + stderr, StringComparison.Ordinal);

        var config = Path.Combine(lab.StateDir, "window.json");
        await File.WriteAllTextAsync(config, $$"""{ "clusters": { "WC": { "window": "{{window}}" } } }""");
        (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "WC", "--exec", "--config", config);
        Assert.True(code == 3, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains($"outside the maintenance window {window}", stdout + stderr, StringComparison.Ordinal);
        AuditAssert.NothingChanged(lab.Audit());
    }

    [Fact]
    public async Task OutsideTheWindow_WaitForWindow_StartsAtTheOpening_AndFinishes()
    {
        await using var lab = await LabHarness.StartAsync(FourHosts, timeScale: 200);
        // An hour of simulated time: 18 s of wall time at this scale.
        var (window, opens) = Opening(lab, TimeSpan.FromHours(1));
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "WC", "--exec", "--window", window, "--wait-for-window");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("waiting for its", stderr, StringComparison.Ordinal);
        var audit = lab.Audit();
        Assert.All(AuditAssert.BootCounts(audit), n => Assert.Equal(1, n));
        AuditAssert.Restored(audit);
        // Nothing was touched before the opening.
        var opensAt = (opens - lab.Lab.TimeOrigin).TotalSeconds;
        var first = audit["events"]!.AsArray().First(e => e!["type"]!.GetValue<string>() is "lock.acquire" or "ha.disable" or "host.disable");
        Assert.True(first!["t"]!.GetValue<double>() >= opensAt, $"{first} before the opening at t={opensAt}");
    }

    [Fact]
    public async Task Resume_HonoursTheWindow_OutsideItStaysResumable()
    {
        await using var lab = await LabHarness.StartAsync(FourHosts, timeScale: 200);
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "WC", "--exec", "--pause-after", "1");
        Assert.True(code == 4, $"exit {code}\n{stdout}\n{stderr}");

        var (later, opens) = Opening(lab, TimeSpan.FromHours(6));
        (code, stdout, stderr) = await lab.RunCliAsync("resume", "--clustername", "WC", "--window", later);
        Assert.True(code == 4, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains($"next opening {Local(opens)}", stdout + stderr, StringComparison.Ordinal);
        Assert.Equal(1, AuditAssert.BootCounts(lab.Audit()).Sum());
        AuditAssert.Restored(lab.Audit());

        var (open, _) = Opening(lab, TimeSpan.FromMinutes(-30));
        (code, stdout, stderr) = await lab.RunCliAsync("resume", "--clustername", "WC", "--window", open);
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.All(AuditAssert.BootCounts(lab.Audit()), n => Assert.Equal(1, n));
        AuditAssert.Restored(lab.Audit());
    }

    [Fact]
    public async Task TheWindowClosingMidRun_NoHostStartsThatWouldEndAfterIt_StopsSafelyAndResumable()
    {
        // Scale 20: the CLI's own start costs little simulated time. Every host is estimated at about 26 minutes
        // (--assume-reboot-seconds 1500) and the opening ends 27 minutes from now: no host after the first can fit.
        await using var lab = await LabHarness.StartAsync(FourHosts, timeScale: 20);
        var zone = TimeZoneInfo.FindSystemTimeZoneById(Zone);
        var now = TimeZoneInfo.ConvertTime(lab.Lab.Clock.GetUtcNow(), zone);
        var opens = now.AddMinutes(-30);
        opens = opens.AddTicks(-(opens.Ticks % TimeSpan.TicksPerMinute));
        var ends = now.AddMinutes(27);
        ends = ends.AddTicks(-(ends.Ticks % TimeSpan.TicksPerMinute));
        var window = $"{s_days[(int)opens.DayOfWeek]} {opens:HH:mm}-{ends:HH:mm} {Zone}";
        var endT = lab.Audit()["simulatedSeconds"]!.GetValue<double>() + (ends - now).TotalSeconds;

        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "WC", "--exec", "--window", window, "--assume-reboot-seconds", "1500");
        Assert.True(code == 4, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("would end after the window", stdout + stderr, StringComparison.Ordinal);
        Assert.Contains("resume in the next window", stdout + stderr, StringComparison.Ordinal);
        var audit = lab.Audit();
        AuditAssert.Restored(audit);
        // At most the master: it fits when the CLI starts within a minute of simulated time (usual), no host after it
        // can (each takes minutes). Whether the master ran depends on this machine's speed, so it is not asserted.
        var boots = AuditAssert.BootCounts(audit);
        Assert.InRange(boots.Sum(), 0, 1);
        Assert.All(boots.Skip(1), n => Assert.Equal(0, n));
        // Every host that went down was back before the opening ended.
        Assert.All(audit["events"]!.AsArray().Where(e => e!["type"]!.ToString() == "host.up"), e => Assert.True(e!["t"]!.GetValue<double>() <= endT, $"a host back at {e["t"]}, the window ended at {endT:0}"));
    }

    [Theory]
    [InlineData("Sat 01:00-05:00 Mars/Olympus", "rollreboot: --window 'Sat 01:00-05:00 Mars/Olympus': time zone 'Mars/Olympus' is not known: use an IANA zone such as Europe/Amsterdam, America/New_York or UTC")]
    [InlineData("Sam,Dim 01:00-05:00", "rollreboot: --window 'Sam,Dim 01:00-05:00': day 'Sam' is not a day of the week (Mon, Tue, Wed, Thu, Fri, Sat, Sun)")]
    [InlineData("Sat 01:00-25:00", "rollreboot: --window 'Sat 01:00-25:00': end time '25:00' is not a time of day (00:00 to 24:00)")]
    public async Task BadWindow_IsOneLineExit2_NothingChanged(string window, string expected)
    {
        await using var lab = await LabHarness.StartAsync(FourHosts, timeScale: 200);
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "WC", "--exec", "--window", window);
        Assert.True(code == 2, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Equal(expected, stderr.Trim());
        AuditAssert.NothingChanged(lab.Audit());
    }
}
