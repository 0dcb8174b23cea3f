// Every public declaration has an example: walks what typedoc (with typedoc.json) sees exported by
// every entry module — classes, interfaces, type aliases, functions, variables, and anything else —
// and fails, listing them, if one has no `@example` block tag (on the declaration or, for a
// function, on one of its signatures). Nothing is exempt. `npm run check:docs` runs it after typedoc.
import { Application, ReflectionKind } from 'typedoc'

const app = await Application.bootstrapWithPlugins({ options: new URL('../typedoc.json', import.meta.url).pathname })
const project = await app.convert()
if (!project || app.logger.hasErrors()) {
  console.error('examples: typedoc could not convert the project')
  process.exit(1)
}

const hasExample = (reflection) =>
  [reflection, ...(reflection.signatures ?? [])].some((r) => r.comment?.blockTags.some((tag) => tag.tag === '@example'))

/** Declaration id → the entry modules that export it (a re-export counts once, where it is declared). */
const seen = new Map()
const modules = project.kindOf(ReflectionKind.Module) ? [project] : (project.children ?? [])
for (const module of modules) {
  for (const child of module.children ?? []) {
    const declaration = child.kindOf(ReflectionKind.Reference) ? child.getTargetReflectionDeep() : child
    const entry = seen.get(declaration.id) ?? { declaration, modules: [] }
    entry.modules.push(module.name)
    seen.set(declaration.id, entry)
  }
}

const missing = [...seen.values()].filter(({ declaration }) => !hasExample(declaration))
if (missing.length) {
  console.error(`examples: ${missing.length} of ${seen.size} public declarations have no @example:`)
  for (const { declaration, modules } of missing) {
    console.error(`  ${ReflectionKind.singularString(declaration.kind)} ${declaration.name} (${modules.join(', ')})`)
  }
  process.exit(1)
}
console.log(`examples: ${seen.size} public declarations, all with an example`)
