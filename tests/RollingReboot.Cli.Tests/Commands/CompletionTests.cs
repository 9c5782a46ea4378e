using System.CommandLine;
using System.Diagnostics;
using System.Text.RegularExpressions;
using RollingReboot.Cli.Commands;
using RollingReboot.Cli.Tests.Configuration;

namespace RollingReboot.Cli.Tests.Commands;

/// <summary><c>rollreboot completion bash|zsh|fish</c>: valid scripts that complete what the command tree has.</summary>
public sealed partial class CompletionTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("rollreboot-completion-test-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static async Task<(int Code, string Out, string Err)> CliAsync(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = await CliApp.RunAsync(args, new CliEnvironment { GetVariable = _ => null, Out = stdout, Error = stderr });
        return (code, stdout.ToString(), stderr.ToString());
    }

    private static async Task<(int Code, string Out, string Err)> BashAsync(string script)
    {
        var start = new ProcessStartInfo("bash") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        using var bash = Process.Start(start)!;
        await bash.StandardInput.WriteAsync(script);
        bash.StandardInput.Close();
        var stdout = bash.StandardOutput.ReadToEndAsync();
        var stderr = bash.StandardError.ReadToEndAsync();
        await bash.WaitForExitAsync();
        return (bash.ExitCode, await stdout, await stderr);
    }

    /// <summary>What bash offers for a command line whose last word is being completed.</summary>
    private async Task<Dictionary<string, string>> CompleteAsync(params string[] lines)
    {
        var (code, script, err) = await CliAsync("completion", "bash");
        Assert.True(code == 0, err);
        var file = Path.Combine(_dir, "rollreboot.bash");
        await File.WriteAllTextAsync(file, script);
        var calls = string.Join("\n", lines.Select(l => $"t {l}"));
        var (bashCode, stdout, stderr) = await BashAsync($$"""
            source '{{file}}'
            t() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _rollreboot; printf '%s=>%s\n' "$*" "${COMPREPLY[*]}"; }
            {{calls}}
            """);
        Assert.True(bashCode == 0, stderr);
        return stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split("=>", 2)).ToDictionary(p => p[0], p => p[1]);
    }

    [Fact]
    public async Task Bash_ScriptIsValid()
    {
        var (code, script, _) = await CliAsync("completion", "bash");
        var file = Path.Combine(_dir, "rollreboot.bash");
        await File.WriteAllTextAsync(file, script);

        var (bashCode, _, stderr) = await BashAsync($"bash -n '{file}' && source '{file}' && complete -p rollreboot");

        Assert.Equal(0, code);
        Assert.True(bashCode == 0, stderr);
    }

    [Fact]
    public async Task Bash_CompletesCommandsOptionsAndValues()
    {
        var offered = await CompleteAsync(
            "rollreboot --clu",
            "rollreboot res",
            "rollreboot resume --thr",
            "rollreboot restore --thr",
            "rollreboot --format ''",
            "rollreboot status --format ''",
            "rollreboot --clustername resume --ex",
            "rollreboot completion ''",
            "rollreboot --threads ''");

        Assert.Equal("--clustername", offered["rollreboot --clu"]);
        Assert.Equal("resume restore", offered["rollreboot res"]);
        Assert.Equal("--threads", offered["rollreboot resume --thr"]);
        Assert.Equal("", offered["rollreboot restore --thr"]);
        Assert.Equal("text markdown json", offered["rollreboot --format "]);
        Assert.Equal("text json", offered["rollreboot status --format "]);
        // "resume" there is the cluster's name, not the subcommand.
        Assert.Equal("--exec", offered["rollreboot --clustername resume --ex"]);
        Assert.Equal("bash fish zsh", offered["rollreboot completion "]);
        Assert.Equal("", offered["rollreboot --threads "]);
    }

    [Fact]
    public void EveryShell_NamesEveryOptionOfEveryCommand_AndFollowsTheTree()
    {
        var root = CliApp.BuildRoot(new CliEnvironment { GetVariable = _ => null, Out = TextWriter.Null, Error = TextWriter.Null });
        root.Subcommands.Single(c => c.Name == "resume").Options.Add(new Option<string>("--added-just-now"));
        foreach (var shell in CompletionCommand.Shells)
        {
            var script = CompletionCommand.Generate(root, shell);
            foreach (var option in new[] { "clustername", "max-hosts-down", "config", "scenario", "time-scale", "added-just-now" })
            {
                Assert.Contains(shell == "fish" ? "-l " + option + " " : "--" + option, script, StringComparison.Ordinal);
            }
        }

        Assert.StartsWith("#compdef rollreboot\n", CompletionCommand.Generate(root, "zsh"), StringComparison.Ordinal);
        Assert.Contains("compdef _rollreboot rollreboot", CompletionCommand.Generate(root, "zsh"), StringComparison.Ordinal);
        Assert.Contains("complete -c rollreboot -n '__fish_seen_subcommand_from resume' -l added-just-now -x", CompletionCommand.Generate(root, "fish"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownShell_Exit2_OneLine()
    {
        var (code, stdout, stderr) = await CliAsync("completion", "tcsh");

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.Equal("rollreboot: no completion for shell 'tcsh': use bash, zsh or fish (see rollreboot --help)", stderr.Trim());
    }

    [Fact]
    public async Task OperationsDocExamples_Run()
    {
        var doc = await File.ReadAllTextAsync(Path.Combine(ConfigFileTests.RepoRoot(), "docs", "operations.md"));
        var section = doc[doc.IndexOf("## Shell completion", StringComparison.Ordinal)..];
        var shells = CompletionLine().Matches(section[..section.IndexOf("\n## ", 1, StringComparison.Ordinal)]).Select(m => m.Groups[1].Value).ToList();

        Assert.Equal(CompletionCommand.Shells.Order(StringComparer.Ordinal), shells.Order(StringComparer.Ordinal));
        foreach (var shell in shells)
        {
            var (code, stdout, _) = await CliAsync("completion", shell);
            Assert.Equal(0, code);
            Assert.Contains("rollreboot", stdout, StringComparison.Ordinal);
        }
    }

    [GeneratedRegex(@"^rollreboot completion (\w+) >", RegexOptions.Multiline)]
    private static partial Regex CompletionLine();
}
