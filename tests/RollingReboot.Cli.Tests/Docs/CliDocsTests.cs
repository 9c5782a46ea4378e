using System.CommandLine;
using System.Reflection;
using System.Text.RegularExpressions;
using RollingReboot.CloudStack;
using RollingReboot.Ssh;

namespace RollingReboot.Cli.Tests.Docs;

/// <summary>
/// docs/cli.md against the real command tree: every command has a section, each section's option table lists
/// exactly that command's options, and the page names no option, environment variable or exit code that
/// does not exist. Adding an option to the CLI without documenting it fails here.
/// </summary>
public partial class CliDocsTests
{
    private static readonly string[] s_builtInOptions = ["--help", "--version"];

    private readonly RootCommand _root = CliApp.BuildRoot(new CliEnvironment
    {
        GetVariable = _ => null,
        Out = TextWriter.Null,
        Error = TextWriter.Null,
    });

    private readonly CliDoc _doc = CliDoc.Load();

    [Fact]
    public void EveryCommandHasASection_AndEverySectionIsACommand()
    {
        var commands = AllCommands(_root).Select(c => c.Path).ToList();
        var missing = commands.Except(_doc.Sections.Keys).ToList();
        Assert.True(missing.Count == 0, $"docs/cli.md has no '## {string.Join("' / '## ", missing)}' section");

        var unknown = _doc.Sections.Keys.Except(commands).ToList();
        Assert.True(unknown.Count == 0, $"docs/cli.md documents commands that do not exist: {string.Join(", ", unknown)}");

        // The walk itself sees the whole tree.
        Assert.Subset(commands.ToHashSet(), new HashSet<string> { "rollreboot", "rollreboot resume", "rollreboot restore", "rollreboot status", "rollreboot lab" });
    }

    [Fact]
    public void EverySubcommandNameAppearsInTheDoc()
    {
        foreach (var (command, path) in AllCommands(_root))
        {
            foreach (var sub in command.Subcommands.Where(s => !s.Hidden))
            {
                Assert.True(_doc.Text.Contains($"{path} {sub.Name}", StringComparison.Ordinal), $"docs/cli.md never mentions '{path} {sub.Name}'");
            }
        }
    }

    [Fact]
    public void EveryOptionOfEveryCommandIsInItsSectionsTable()
    {
        var problems = UndocumentedOptions(_root, _doc);
        Assert.True(problems.Count == 0, "docs/cli.md is missing options:\n" + string.Join("\n", problems));
    }

    [Fact]
    public void AnOptionAddedWithoutDocumentationIsCaught()
    {
        // The guard itself: the same check, on a tree with options the page does not document.
        var before = UndocumentedOptions(_root, _doc);
        _root.Subcommands.Single(c => c.Name == "resume").Options.Add(new Option<bool>("--not-documented-anywhere"));
        _root.Options.Add(new Option<int>("--also-new", "-N"));
        var problems = UndocumentedOptions(_root, _doc).Except(before).ToList();
        Assert.Equal(
            ["rollreboot: option --also-new is not in the option table of '## rollreboot'",
             "rollreboot: option -N is not in the option table of '## rollreboot'",
             "rollreboot resume: option --not-documented-anywhere is not in the option table of '## rollreboot resume'"],
            problems);
    }

    [Fact]
    public void EachSectionsTableNamesOnlyOptionsOfThatCommand()
    {
        var problems = new List<string>();
        foreach (var (command, path) in AllCommands(_root))
        {
            if (!_doc.Sections.TryGetValue(path, out var section))
            {
                continue;
            }

            var names = OptionsOf(command).SelectMany(NamesOf).ToHashSet(StringComparer.Ordinal);
            problems.AddRange(section.TableOptions.Where(t => !names.Contains(t)).Select(t => $"'## {path}' lists {t}, which {path} does not take"));
        }

        Assert.True(problems.Count == 0, "docs/cli.md lists options that do not exist there:\n" + string.Join("\n", problems));
    }

    [Fact]
    public void TheDocMentionsNoOptionThatDoesNotExist()
    {
        var all = AllCommands(_root).SelectMany(c => OptionsOf(c.Command)).SelectMany(NamesOf)
            .Concat(s_builtInOptions).ToHashSet(StringComparer.Ordinal);
        var unknown = LongOption().Matches(_doc.Text).Select(m => m.Value).Distinct().Where(t => !all.Contains(t)).ToList();
        Assert.True(unknown.Count == 0, $"docs/cli.md mentions options no command has: {string.Join(", ", unknown)}");
    }

    [Fact]
    public void EveryEnvironmentVariableIsDocumented_AndNoOtherIs()
    {
        var variables = new[] { typeof(EnvNames), typeof(SshProbeOptions), typeof(CloudStackCredentials), typeof(EmbeddedLab) }
            .SelectMany(t => t.GetFields(BindingFlags.Public | BindingFlags.Static))
            .Where(f => f.IsLiteral && f.FieldType == typeof(string))
            .Select(f => (string)f.GetRawConstantValue()!)
            .Where(v => v.StartsWith("ROLLREBOOT_", StringComparison.Ordinal))
            .ToHashSet(StringComparer.Ordinal);
        Assert.Contains("ROLLREBOOT_SSH_KEY", variables);

        var environment = _doc.Section("Environment");
        var missing = variables.Where(v => !environment.Contains($"`{v}`", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
        Assert.True(missing.Count == 0, $"the Environment section of docs/cli.md lacks {string.Join(", ", missing)}");

        // The variables rollreboot gives hooks are documented in their own section.
        var hookVariables = typeof(RollingReboot.Core.Run.HookVariables).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Select(f => (string)f.GetRawConstantValue()!).ToHashSet(StringComparer.Ordinal);
        var hookSection = _doc.Section("Hook environment");
        var undocumentedHookVariables = hookVariables.Where(v => !hookSection.Contains($"`{v}`", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
        Assert.True(undocumentedHookVariables.Count == 0, $"the Hook environment section of docs/cli.md lacks {string.Join(", ", undocumentedHookVariables)}");

        var unknown = EnvironmentVariable().Matches(_doc.Text).Select(m => m.Value).Distinct().Where(v => !variables.Contains(v) && !hookVariables.Contains(v)).ToList();
        Assert.True(unknown.Count == 0, $"docs/cli.md names variables rollreboot does not read: {string.Join(", ", unknown)}");
    }

    [Fact]
    public void TheExitCodeTableIsExactlyTheExitCodes()
    {
        var codes = typeof(ExitCodes).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.IsLiteral && f.FieldType == typeof(int))
            .Select(f => (int)f.GetRawConstantValue()!)
            .Order()
            .ToList();
        var documented = ExitCodeRow().Matches(_doc.Section("Exit codes")).Select(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(codes, documented);
    }

    /// <summary>Every name and alias of every visible option of every command that its section's table lacks.</summary>
    private static List<string> UndocumentedOptions(RootCommand root, CliDoc doc)
    {
        var problems = new List<string>();
        foreach (var (command, path) in AllCommands(root))
        {
            if (!doc.Sections.TryGetValue(path, out var section))
            {
                problems.Add($"{path}: no section '## {path}'");
                continue;
            }

            foreach (var option in OptionsOf(command).Where(o => !o.Hidden))
            {
                problems.AddRange(NamesOf(option)
                    .Where(name => !section.TableOptions.Contains(name))
                    .Select(name => $"{path}: option {name} is not in the option table of '## {path}'"));
            }
        }

        return problems;
    }

    private static IEnumerable<(Command Command, string Path)> AllCommands(Command command, string? parentPath = null)
    {
        var path = parentPath is null ? "rollreboot" : parentPath + " " + command.Name;
        yield return (command, path);
        foreach (var sub in command.Subcommands.Where(s => !s.Hidden))
        {
            foreach (var c in AllCommands(sub, path))
            {
                yield return c;
            }
        }
    }

    /// <summary>
    /// An option's name and aliases as --help shows them: System.CommandLine's help option also answers to
    /// the DOS-style /h and /?, which help does not list and this page does not either.
    /// </summary>
    private static IEnumerable<string> NamesOf(Option option) =>
        new[] { option.Name }.Concat(option.Aliases.Order(StringComparer.Ordinal)).Where(n => !n.StartsWith('/'));

    /// <summary>A command's own options and the recursive ones of its ancestors (what its --help lists).</summary>
    private static IEnumerable<Option> OptionsOf(Command command)
    {
        var options = command.Options.ToList();
        for (var parent = command.Parents.OfType<Command>().FirstOrDefault(); parent is not null; parent = parent.Parents.OfType<Command>().FirstOrDefault())
        {
            options.AddRange(parent.Options.Where(o => o.Recursive && !options.Contains(o)));
        }

        return options;
    }

    [GeneratedRegex(@"(?<![\w-])--[a-z][a-z0-9-]*")]
    private static partial Regex LongOption();

    [GeneratedRegex(@"ROLLREBOOT_[A-Z0-9_]*[A-Z0-9]")]
    private static partial Regex EnvironmentVariable();

    [GeneratedRegex(@"^\|\s*(\d+)\s*\|", RegexOptions.Multiline)]
    private static partial Regex ExitCodeRow();

    private sealed partial class CliDoc
    {
        private CliDoc(string text, Dictionary<string, CommandSection> sections, Dictionary<string, string> otherSections)
        {
            Text = text;
            Sections = sections;
            OtherSections = otherSections;
        }

        public string Text { get; }

        /// <summary>Command sections by command path: "## rollreboot resume" is "rollreboot resume".</summary>
        public Dictionary<string, CommandSection> Sections { get; }

        private Dictionary<string, string> OtherSections { get; }

        public string Section(string heading) =>
            OtherSections.TryGetValue(heading, out var body) ? body : throw new Xunit.Sdk.XunitException($"docs/cli.md has no '## {heading}' section");

        public static CliDoc Load()
        {
            var text = File.ReadAllText(Path.Combine(RepoRoot(), "docs", "cli.md")).Replace("\r\n", "\n", StringComparison.Ordinal);
            var commands = new Dictionary<string, CommandSection>(StringComparer.Ordinal);
            var others = new Dictionary<string, string>(StringComparer.Ordinal);
            var parts = SectionStart().Split(text).Skip(1);
            foreach (var part in parts)
            {
                var newline = part.IndexOf('\n', StringComparison.Ordinal);
                var heading = newline < 0 ? part : part[..newline];
                var body = newline < 0 ? "" : part[(newline + 1)..];
                var command = CommandHeading().Match(heading);
                if (command.Success)
                {
                    Assert.False(commands.ContainsKey(command.Groups[1].Value), $"docs/cli.md has two sections for {command.Groups[1].Value}");
                    commands[command.Groups[1].Value] = new CommandSection(TableOptionsOf(body));
                }
                else
                {
                    others[heading.Trim()] = body;
                }
            }

            return new CliDoc(text, commands, others);
        }

        /// <summary>The option names in the first cell of each table row: the first word of each `code` span that starts with '-'.</summary>
        private static HashSet<string> TableOptionsOf(string body)
        {
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var line in body.Split('\n').Where(l => l.StartsWith('|')))
            {
                var firstCell = line.Split('|', StringSplitOptions.None)[1];
                foreach (Match span in CodeSpan().Matches(firstCell))
                {
                    var word = span.Groups[1].Value.Split(' ', 2)[0];
                    if (word.StartsWith('-'))
                    {
                        names.Add(word);
                    }
                }
            }

            return names;
        }

        private static string RepoRoot()
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "RollingReboot.sln")))
                {
                    return dir.FullName;
                }
            }

            throw new InvalidOperationException($"no RollingReboot.sln above {AppContext.BaseDirectory}");
        }

        [GeneratedRegex("^## ", RegexOptions.Multiline)]
        private static partial Regex SectionStart();

        [GeneratedRegex(@"^(rollreboot(?: [a-z][a-z0-9-]*)*)(?:\s|$)")]
        private static partial Regex CommandHeading();

        [GeneratedRegex("`([^`]+)`")]
        private static partial Regex CodeSpan();
    }

    private sealed record CommandSection(HashSet<string> TableOptions);
}
