using System.Text.Json.Nodes;
using RollingReboot.Cli.Adapters;
using RollingReboot.Core.Ports;

namespace RollingReboot.Cli.Tests.Adapters;

/// <summary>--notify-template: placeholders filled in, JSON kept JSON whatever the values, bad templates refused in one line.</summary>
public sealed class NotifyTemplateTests
{
    private static readonly RunNotification s_note = new("host.done", "h2 of \"C\" done\nback after 90 s \\o/", "C", "P", "run-1", "h2", null);
    private static readonly DateTimeOffset s_at = new(2026, 11, 21, 2, 30, 0, TimeSpan.Zero);

    [Fact]
    public void Render_Json_EscapesValuesAndStaysJson()
    {
        var t = NotifyTemplate.Parse("""{ "title": "{{event}} on {{ cluster }}", "body": "{{text}}", "host": "{{host}}", "outcome": "{{outcome}}", "at": "{{time}}" }""", "t.json");
        Assert.True(t.IsJson);
        Assert.Equal("application/json", t.MediaType);
        var body = JsonNode.Parse(t.Render(s_note, s_at))!.AsObject();
        Assert.Equal("host.done on C", body["title"]!.ToString());
        Assert.Equal(s_note.Text, body["body"]!.ToString());
        Assert.Equal("h2", body["host"]!.ToString());
        Assert.Equal("", body["outcome"]!.ToString());
        Assert.Equal("2026-11-21T02:30:00.0000000+00:00", body["at"]!.ToString());
    }

    [Fact]
    public void Render_PlainText_ValuesAsTheyAre()
    {
        var t = NotifyTemplate.Parse("{{cluster}}: {{text}}", "t.txt");
        Assert.False(t.IsJson);
        Assert.Equal("text/plain", t.MediaType);
        Assert.Equal("C: " + s_note.Text, t.Render(s_note, s_at));
    }

    [Theory]
    [InlineData("{\"text\": \"{{hostname}}\"}", "unknown placeholder {{hostname}} at line 1; known: {{text}}")]
    [InlineData("{\"text\": \"{{Host}}\"}", "unknown placeholder {{Host}} at line 1; did you mean {{host}}?")]
    [InlineData("line one\n{{text", "'{{' at line 2 is never closed")]
    [InlineData("{\"text\": {{text}} }", "starts like JSON but is not JSON once filled in")]
    [InlineData("  \n", "the file is empty")]
    public void Parse_BadTemplate_OneLineNamingTheFileAndTheProblem(string text, string expected)
    {
        var e = Assert.Throws<UserFacingException>(() => NotifyTemplate.Parse(text, "/etc/rollreboot/t.json"));
        Assert.StartsWith("--notify-template /etc/rollreboot/t.json: ", e.Message, StringComparison.Ordinal);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Equal(ExitCodes.BadInput, e.ExitCode);
    }

    [Fact]
    public void Load_MissingFile_Exit2()
    {
        var e = Assert.Throws<UserFacingException>(() => NotifyTemplate.Load("/nonexistent/dir/t.json"));
        Assert.Contains("cannot be read", e.Message, StringComparison.Ordinal);
    }
}
