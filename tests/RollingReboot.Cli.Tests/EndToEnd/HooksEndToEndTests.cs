using System.Net;
using System.Text.Json.Nodes;
using RollingReboot.Xapi;
using RollingReboot.Xapi.Tls;

namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>
/// The operator's commands around the run, against the lab: hooks (local and over SSH) in order with exit 70
/// skipping a host, the needs-reboot check, the blocker check, --halt with someone powering hosts on, --notify.
/// </summary>
public sealed class HooksEndToEndTests : IDisposable
{
    private static readonly string FourHosts = LabHarness.FourHosts("HP", "HC", "h");

    private readonly string _dir = Directory.CreateTempSubdirectory("rollreboot-hooks-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Dictionary<string, int> BootCounts(JsonObject audit) =>
        audit["hosts"]!.AsArray().ToDictionary(h => h!["name"]!.ToString(), h => h!["bootCount"]!.GetValue<int>());

    private string Script(string name, string body)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, "#!/bin/sh\n" + body + "\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        return path;
    }

    [Fact]
    public async Task Hooks_RunInOrderAroundEachHost_LocalThenRemote_Exit70SkipsTheHost()
    {
        await using var lab = await LabHarness.StartAsync(FourHosts, timeScale: 200);
        var log = Path.Combine(_dir, "hooks.log");
        // The pre hook sees the host and pool, never rollreboot's secrets; h3 says "skip me".
        var pre = Script("pre.sh", $"""
            [ -z "$ROLLREBOOT_XAPI_PASSWORD$ROLLREBOOT_CLOUDSTACK_SECRET_KEY" ] || exit 99
            echo "pre $ROLLREBOOT_HOST $ROLLREBOOT_PHASE $ROLLREBOOT_POOL master=$ROLLREBOOT_IS_MASTER" >> '{log}'
            [ "$ROLLREBOOT_HOST" = h3 ] && exit 70
            exit 0
            """);
        var post = Script("post.sh", $"echo \"post $ROLLREBOOT_HOST $ROLLREBOOT_PHASE\" >> '{log}'");

        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "HC", "--exec",
            "--pre-host-hook", pre, "--post-host-hook", post,
            "--pre-host-command", $"echo \"remote-pre $ROLLREBOOT_HOST on $ROLLREBOOT_LAB_HOST\" >> '{log}'",
            "--post-host-command", $"echo \"remote-post $ROLLREBOOT_HOST on $ROLLREBOOT_LAB_HOST\" >> '{log}'");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");

        var lines = File.ReadAllLines(log);
        Assert.Equal(
            [
                "pre h1 pre HP master=1", "remote-pre h1 on h1", "post h1 post", "remote-post h1 on h1",
                "pre h2 pre HP master=0", "remote-pre h2 on h2", "post h2 post", "remote-post h2 on h2",
                "pre h3 pre HP master=0",
                "pre h4 pre HP master=0", "remote-pre h4 on h4", "post h4 post", "remote-post h4 on h4",
            ],
            lines);
        var audit = lab.Audit();
        Assert.Equal(new Dictionary<string, int> { ["h1"] = 1, ["h2"] = 1, ["h3"] = 0, ["h4"] = 1 }, BootCounts(audit));
        AuditAssert.Restored(audit);
        Assert.Contains("skipped by pre hook (exit 70)", stdout, StringComparison.Ordinal);
        // The skipped host was evacuated (it was empty when its hook ran) and takes VMs back afterwards as any host.
        var events = audit["events"]!.AsArray();
        var h3Empty = events.Where(e => e!["type"]!.ToString() == "migration.end" && e["from"]!.ToString() == "h3").Count();
        Assert.Equal(3, h3Empty);
    }

    [Fact]
    public async Task FailingPreHook_StopsBeforeTheReboot_Restored_Exit4()
    {
        await using var lab = await LabHarness.StartAsync(FourHosts, timeScale: 200);
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "HC", "--exec", "--pre-host-hook", "echo patch failed >&2; exit 3");
        Assert.True(code == 4, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("--pre-host-hook on h1 exited 3 (patch failed); stopped before its reboot", stdout + stderr, StringComparison.Ordinal);
        var audit = lab.Audit();
        Assert.All(BootCounts(audit).Values, n => Assert.Equal(0, n));
        AuditAssert.Restored(audit);
    }

    [Fact]
    public async Task NeedsRebootCommand_OnlyHostsThatSayYesAreRebooted_PlanShowsWhy()
    {
        await using var lab = await LabHarness.StartAsync(FourHosts, timeScale: 200);
        foreach (var h in new[] { "h2", "h4" })
        {
            await File.WriteAllTextAsync(Path.Combine(lab.Lab.HostShellDirectory(h)!, "reboot-required"), "");
        }

        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "HC", "--format", "json", "--needs-reboot-command", "test -e reboot-required");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var plan = JsonNode.Parse(stdout)!;
        var actions = plan["hosts"]!.AsArray().ToDictionary(h => h!["name"]!.ToString(), h => h!["action"]!.ToString());
        Assert.Equal(new Dictionary<string, string> { ["h1"] = "skip", ["h2"] = "reboot", ["h3"] = "skip", ["h4"] = "reboot" }, actions);
        Assert.Contains("no reboot needed (--needs-reboot-command exited 1)", plan["hosts"]!.AsArray().First(h => h!["name"]!.ToString() == "h1")!["reason"]!.ToString(), StringComparison.Ordinal);

        // A notification endpoint that is down never stops the run.
        (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "HC", "--exec", "--needs-reboot-command", "test -e reboot-required", "--notify", "http://127.0.0.1:9/hook");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("Notification 'start' to http://127.0.0.1:9/... failed", stderr, StringComparison.Ordinal);
        var audit = lab.Audit();
        Assert.Equal(new Dictionary<string, int> { ["h1"] = 0, ["h2"] = 1, ["h3"] = 0, ["h4"] = 1 }, BootCounts(audit));
        AuditAssert.Restored(audit);
    }

    [Fact]
    public async Task BlockerCommand_BlocksTheStart_ThenBetweenHostsStopsSafely_ResumeFinishes()
    {
        await using var lab = await LabHarness.StartAsync(FourHosts, timeScale: 200);
        var flag = Path.Combine(_dir, "alert-firing");
        await File.WriteAllTextAsync(flag, "");
        var check = $"test ! -e '{flag}' || {{ echo 'alert HostDown firing'; exit 1; }}";

        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "HC", "--exec", "--blocker-command", check);
        Assert.True(code == 3, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("--blocker-command exited 1 (alert HostDown firing)", stdout + stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(lab.Audit()["events"]!.AsArray(), e => e!["type"]!.ToString() is "ha.disable" or "host.disable" or "cloudstack.managedState");

        // The alert clears; the first host's post hook raises it again: the run waits, then stops safely (exit 4).
        File.Delete(flag);
        (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "HC", "--exec", "--blocker-command", check, "--blocker-timeout", "3m",
            "--post-host-hook", $"touch '{flag}'");
        Assert.True(code == 4, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("Blocked before h2", stderr, StringComparison.Ordinal);
        Assert.Equal(1, BootCounts(lab.Audit()).Values.Sum());
        AuditAssert.Restored(lab.Audit());

        File.Delete(flag);
        (code, stdout, stderr) = await lab.RunCliAsync("resume", "--clustername", "HC", "--blocker-command", check);
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.All(BootCounts(lab.Audit()).Values, n => Assert.Equal(1, n));
        AuditAssert.Restored(lab.Audit());
    }

    [Fact]
    public async Task Halt_ShutsHostsDown_WaitsForPowerOn_ProvesTheBoot_NotifiesAWebhook()
    {
        // Members that XAPI can power on (wake-on-lan), and --power-on-delay manual: xe host-power-on by a person.
        await using var lab = await LabHarness.StartAsync(FourHosts.Replace("\"rebootSeconds\": 100 }", "\"rebootSeconds\": 100, \"powerOnMode\": \"wake-on-lan\" }", StringComparison.Ordinal), timeScale: 200);
        using var receiver = new WebhookEndpoint();

        // Someone in the data centre: powers each host on a while after it went down (xe host-power-on).
        using var stopPowering = new CancellationTokenSource();
        var poweredOn = new List<string>();
        var powering = Task.Run(async () =>
        {
            var env = lab.Lab.Environment;
            await using var xapi = new XapiClient(new XapiClientOptions
            {
                Url = new Uri(env["ROLLREBOOT_XAPI_URL"]),
                UserName = env["ROLLREBOOT_XAPI_USER"],
                Password = env["ROLLREBOOT_XAPI_PASSWORD"],
                Certificates = new XapiCertificatePolicy(env["ROLLREBOOT_XAPI_CERT_SHA256"].Split(',')),
            });
            while (!stopPowering.IsCancellationRequested)
            {
                var down = lab.Audit()["hosts"]!.AsArray().Where(h => !h!["live"]!.GetValue<bool>()).Select(h => h!["name"]!.ToString()).ToList();
                var shutdownDone = lab.Audit()["events"]!.AsArray().Where(e => e!["type"]!.ToString() == "host.down").Select(e => e!["host"]!.ToString()).ToHashSet();
                var master = lab.Audit()["pool"]!["master"]!.ToString();
                foreach (var name in down.Where(shutdownDone.Contains).Except(poweredOn).ToList())
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(300), TimeProvider.System);
                    if (name == master)
                    {
                        // The pool's XAPI is down with its master: press its power button (IPMI / iLO).
                        Assert.True(lab.Lab.PressPowerButton(name));
                    }
                    else
                    {
                        var hostRef = (await xapi.CallAsync("host.get_by_name_label", [name]))!.AsArray()[0]!.ToString();
                        await xapi.CallAsync("host.power_on", [hostRef]);
                    }

                    poweredOn.Add(name);
                }

                await Task.Delay(TimeSpan.FromMilliseconds(100), TimeProvider.System);
            }
        });

        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "HC", "--exec", "--halt", "--power-on-delay", "manual", "--power-on-timeout", "2h", "--notify", receiver.Url);
        await stopPowering.CancelAsync();
        await powering;
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var audit = lab.Audit();
        Assert.All(BootCounts(audit).Values, n => Assert.Equal(1, n));
        AuditAssert.Restored(audit);
        var events = audit["events"]!.AsArray();
        Assert.Equal(4, events.Count(e => e!["type"]!.ToString() == "host.shutdown"));
        Assert.DoesNotContain(events, e => e!["type"]!.ToString() == "host.reboot");
        Assert.Equal(4, poweredOn.Count);

        var messages = receiver.Messages;
        Assert.Equal("start", messages[0]["event"]!.ToString());
        Assert.Equal("finish", messages[^1]["event"]!.ToString());
        Assert.Equal(4, messages.Count(m => m["event"]!.ToString() == "host.done"));
        Assert.Equal(4, messages.Count(m => m["event"]!.ToString() == "host.halted"));
        Assert.All(messages, m => Assert.False(string.IsNullOrWhiteSpace(m["text"]!.ToString())));
        Assert.Contains("Done", messages[^1]["text"]!.ToString(), StringComparison.Ordinal);
        Assert.All(messages, m => Assert.Equal("HC", m["cluster"]!.ToString()));
    }
}
