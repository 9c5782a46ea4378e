using System.Diagnostics;
using System.Text.Json.Nodes;

namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>
/// --notify-template against a real HTTP listener and --mail-to through a real mail command, against the lab: the
/// messages are checked as their receivers see them (the mail parsed by Python's email package, an independent
/// MIME parser), and after every run the audit shows nothing lost and everything restored.
/// </summary>
public sealed class NotificationsEndToEndTests : IDisposable
{
    private const string Parser = """
        import email, email.policy, email.utils, json, sys
        raw = open(sys.argv[1], 'rb').read()
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        parts = []
        for part in msg.walk():
            if part.is_multipart():
                continue
            parts.append({'type': part.get_content_type(), 'charset': part.get_content_charset(), 'disposition': part.get_content_disposition(),
                          'filename': part.get_filename(), 'content': part.get_content(), 'defects': [str(d) for d in part.defects]})
        print(json.dumps({'from': str(msg['From']), 'to': [a.addr_spec for a in msg['To'].addresses], 'subject': str(msg['Subject']),
                          'date': email.utils.parsedate_to_datetime(msg['Date']).isoformat(), 'messageId': str(msg['Message-ID']),
                          'outcome': str(msg['X-Rollreboot-Outcome']), 'mime': str(msg['MIME-Version']), 'type': msg.get_content_type(),
                          'defects': [str(d) for d in msg.defects], 'parts': parts}))
        """;

    private readonly string _dir = Directory.CreateTempSubdirectory("rollreboot-notify-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string File(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        System.IO.File.WriteAllText(path, text);
        return path;
    }

    /// <summary>The message as Python's email package reads it.</summary>
    private async Task<JsonObject> ParseMailAsync(string path)
    {
        var script = File("parse_mail.py", Parser);
        var (exit, output, error) = await ExternalTool.RunAsync(new ProcessStartInfo("python3", [script, path]), "to parse the mail");
        Assert.True(exit == 0, $"python3 could not parse {path}: {error}\n{System.IO.File.ReadAllText(path)}");
        return JsonNode.Parse(output)!.AsObject();
    }

    private static void AssertMail(JsonObject mail, string subject, string outcome, string bodyHas)
    {
        Assert.Empty(mail["defects"]!.AsArray());
        Assert.Equal("1.0", mail["mime"]!.ToString());
        Assert.Equal("multipart/mixed", mail["type"]!.ToString());
        Assert.Equal(["ops@example.com", "cab@example.com"], mail["to"]!.AsArray().Select(a => a!.ToString()));
        Assert.Equal("rollreboot <rollreboot@test.example>", mail["from"]!.ToString());
        Assert.Equal(subject, mail["subject"]!.ToString());
        Assert.Equal(outcome, mail["outcome"]!.ToString());
        var parts = mail["parts"]!.AsArray();
        Assert.Equal(2, parts.Count);
        Assert.All(parts, p => Assert.Empty(p!["defects"]!.AsArray()));
        var body = parts[0]!;
        Assert.Equal("text/plain", body["type"]!.ToString());
        Assert.Equal("utf-8", body["charset"]!.ToString());
        Assert.Null(body["disposition"]);
        Assert.Contains(bodyHas, body["content"]!.ToString(), StringComparison.Ordinal);
        Assert.Contains("HOST             MIGRATIONS", body["content"]!.ToString(), StringComparison.Ordinal);
        var report = parts[1]!;
        Assert.Equal("text/markdown", report["type"]!.ToString());
        Assert.Equal("attachment", report["disposition"]!.ToString());
        Assert.Matches(@"^rollreboot-\d{8}T\d{6}-[0-9a-f]{6}\.md$", report["filename"]!.ToString());
        Assert.StartsWith("# rollreboot run ", report["content"]!.ToString(), StringComparison.Ordinal);
        Assert.Contains("| Host | Migrations |", report["content"]!.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task TemplatesAndMail_PauseThenResume_EachPostTemplated_AMailPerOutcome_PoolRestored()
    {
        await using var lab = await LabHarness.StartAsync(LabHarness.FourHosts("NP", "NC", "n"), timeScale: 200);
        using var endpoint = new WebhookEndpoint();
        var json = File("teams.json", """
            { "@type": "MessageCard", "title": "rollreboot {{event}} on {{cluster}}",
              "text": "{{text}}", "host": "{{ host }}", "run": "{{runId}}", "outcome": "{{outcome}}", "at": "{{time}}" }
            """);
        var stopped = Path.Combine(_dir, "stopped.eml");
        var mailArgs = new[] { "--mail-to", "ops@example.com,cab@example.com", "--mail-from", "rollreboot@test.example" };

        // The canary stops after one host: every post is the JSON template filled in, the mail says "stopped".
        var (code, stdout, stderr) = await lab.RunCliAsync(["--clustername", "NC", "--exec", "--pause-after", "1", "--notify", endpoint.Url, "--notify-template", json,
            "--mail-command", $"cat > '{stopped}'", .. mailArgs]);
        Assert.True(code == 4, $"exit {code}\n{stdout}\n{stderr}");
        AuditAssert.Restored(lab.Audit());
        Assert.Equal(1, AuditAssert.BootCounts(lab.Audit()).Sum());
        var posts = endpoint.Posts;
        Assert.NotEmpty(posts);
        Assert.All(posts, p => Assert.StartsWith("application/json", p.ContentType, StringComparison.Ordinal));
        var cards = posts.Select(p => JsonNode.Parse(p.Body)!.AsObject()).ToList();
        Assert.All(cards, c => Assert.Equal("MessageCard", c["@type"]!.ToString()));
        Assert.Equal("rollreboot start on NC", cards[0]["title"]!.ToString());
        var hostDone = cards.Single(c => c["title"]!.ToString() == "rollreboot host.done on NC");
        Assert.Equal("n1", hostDone["host"]!.ToString());
        Assert.Contains("n1", hostDone["text"]!.ToString(), StringComparison.Ordinal);
        Assert.Equal("", cards[0]["host"]!.ToString());
        Assert.All(cards, c => Assert.Matches(@"^\d{8}T\d{6}-[0-9a-f]{6}$", c["run"]!.ToString()));
        Assert.Contains("Summary mailed to ops@example.com, cab@example.com", stderr, StringComparison.Ordinal);
        AssertMail(await ParseMailAsync(stopped), "rollreboot NC: stopped, pool restored, 1 host(s) rebooted", "StoppedRestored",
            "Continue with: rollreboot resume --clustername NC");

        // Resume with a plain-text template: text/plain posts; the mail says "done".
        var text = File("ntfy.txt", "{{cluster}} {{event}}: {{text}}");
        var done = Path.Combine(_dir, "done.eml");
        var before = posts.Count;
        (code, stdout, stderr) = await lab.RunCliAsync(["resume", "--clustername", "NC", "--notify", endpoint.Url, "--notify-template", text,
            "--mail-command", $"cat > '{done}'", .. mailArgs]);
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        AuditAssert.Restored(lab.Audit());
        Assert.All(AuditAssert.BootCounts(lab.Audit()), n => Assert.Equal(1, n));
        var plain = endpoint.Posts.Skip(before).ToList();
        Assert.All(plain, p => Assert.StartsWith("text/plain", p.ContentType, StringComparison.Ordinal));
        Assert.Contains(plain, p => p.Body.StartsWith("NC finish: rollreboot on NC finished: Done", StringComparison.Ordinal));
        Assert.Equal(3, plain.Count(p => p.Body.StartsWith("NC host.done: ", StringComparison.Ordinal)));
        AssertMail(await ParseMailAsync(done), "rollreboot NC: done, 3 host(s) rebooted", "Done", "all 4 host(s) rebooted");
    }

    [Fact]
    public async Task HostDoesNotReturn_MailSaysOperatorActionNeeded_AFailingMailCommandKeepsExit5()
    {
        const string scenario = """
            {
              "name": "mailfault", "pool": { "name": "MP", "ha": { "enabled": true, "timeoutSeconds": 200, "hostFailuresToTolerate": 1, "heartbeatSr": "nfs" } },
              "cloudstack": { "clusterName": "MC" },
              "migration": { "setupSeconds": 3 },
              "hosts": [ { "name": "m1", "master": true, "memoryMiB": 65536, "rebootSeconds": 100 }, { "name": "m2", "memoryMiB": 65536, "rebootSeconds": 100 },
                         { "name": "m3", "memoryMiB": 65536, "rebootSeconds": 100 } ],
              "srs": [ { "name": "nfs", "shared": true } ],
              "generate": [ { "hosts": ["m1", "m2", "m3"], "perHost": 3, "memoryMiB": [2048], "seed": 7 } ],
              "faults": [ { "type": "hostDoesNotReturn", "host": "m2" } ]
            }
            """;
        await using var lab = await LabHarness.StartAsync(scenario, timeScale: 200);
        var failed = Path.Combine(_dir, "failed.eml");
        // The mail command takes the message, then fails (a relay refusing it): logged, the exit code stays the run's.
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "MC", "--exec", "--host-timeout", "15m",
            "--mail-to", "ops@example.com", "--mail-to", "cab@example.com", "--mail-from", "rollreboot@test.example",
            "--mail-command", $"cat > '{failed}'; echo 'relay refused' >&2; exit 75");
        Assert.True(code == 5, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("The summary mail to ops@example.com, cab@example.com was not sent", stderr, StringComparison.Ordinal);
        Assert.Contains("relay refused", stderr, StringComparison.Ordinal);
        var audit = lab.Audit();
        Assert.Empty(audit["violations"]!.AsArray());
        Assert.All(audit["vms"]!.AsArray(), v => Assert.Equal("Running", v!["powerState"]!.ToString()));
        var mail = await ParseMailAsync(failed);
        AssertMail(mail, "rollreboot MC: OPERATOR ACTION NEEDED, 1 host(s) rebooted", "NeedsOperator", "OPERATOR ACTION NEEDED: ");
    }

    [Fact]
    public async Task BadNotificationAndMailInput_Exit2InOneLine_NothingChanged()
    {
        await using var lab = await LabHarness.StartAsync(LabHarness.FourHosts("BP", "BC", "b"), timeScale: 200);
        var unknown = File("unknown.json", """{ "text": "{{text}} on {{hostname}}" }""");
        var broken = File("broken.json", """{ "text": {{text}} }""");
        var cases = new (string[] Args, string Expected)[]
        {
            (["--notify", "http://127.0.0.1:9/hook", "--notify-template", unknown], $"--notify-template {unknown}: unknown placeholder {{{{hostname}}}} at line 1"),
            (["--notify", "http://127.0.0.1:9/hook", "--notify-template", broken], "starts like JSON but is not JSON once filled in"),
            (["--notify", "http://127.0.0.1:9/hook", "--notify-template", Path.Combine(_dir, "missing.json")], "cannot be read"),
            (["--notify-template", unknown], "--notify-template needs --notify URL"),
            (["--mail-command", "cat"], "--mail-command and --mail-from need --mail-to"),
            (["--mail-to", "ops@example.com", "--mail-command", "/nonexistent/sendmail -t"], "--mail-command: /nonexistent/sendmail is not found"),
            (["--mail-to", "ops@example.com\nBcc: x@evil.example"], "is not a mail address"),
        };
        foreach (var (args, expected) in cases)
        {
            foreach (var exec in new[] { true, false })
            {
                var (code, stdout, stderr) = await lab.RunCliAsync(["--clustername", "BC", .. exec ? new[] { "--exec" } : [], .. args]);
                Assert.True(code == 2, $"{string.Join(' ', args)}: exit {code}\n{stdout}\n{stderr}");
                Assert.Contains(expected, stderr, StringComparison.Ordinal);
                Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
                Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
            }
        }

        var audit = lab.Audit();
        Assert.DoesNotContain(audit["events"]!.AsArray(), e => e!["type"]!.ToString() is "ha.disable" or "host.disable" or "cloudstack.managedState" or "vm.migrate");
        Assert.All(AuditAssert.BootCounts(audit), n => Assert.Equal(0, n));
        AuditAssert.Restored(audit);
    }
}
